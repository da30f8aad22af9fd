/**
 * The chat page: wires the composer, the conversation, the sidebar, the agent
 * picker and the key prompt to the API.
 *
 * - A new conversation is created by its first message (POST /chat/stream
 *   without session_id), so it gets a title from that message.
 * - The open conversation's id is kept in localStorage: after a reload it
 *   comes back with its history, and a reply still being written is followed
 *   again from its start (GET /runs/{id}/events).
 * - Switching conversations stops watching a reply, never the reply itself:
 *   it goes on on the server and is there when you come back.
 * - A failed send puts the message back in the box; nothing is ever re-sent
 *   without the user pressing Send.
 */
import { loadAgents, pickedAgent, showAgent } from "./agents.js";
import { Api } from "./api.js";
import { describeError } from "./errors.js";
import { promptKey, setUpKeyPrompt } from "./keys.js";
import { SessionList, UNTITLED, titleOf } from "./sessions.js";
import { storage } from "./storage.js";
import { ReplyStream } from "./stream.js";
import { announce, hideNotice, showNotice, ui } from "./ui.js";
import { ReplyView, historyElements, userMessage } from "./view.js";

const api = new Api(() => storage.apiKey);
const state = {
  sessionId: null,
  agent: null,
  tokens: 0,
  oldestId: null,
  view: 0, // bumped on each switch, so late answers for another conversation are dropped
  active: null, // {stream, reply, stopped}
};

function handleError(error) {
  if (error?.name === "AbortError") return;
  if (error?.status === 401) {
    promptKey(describeError(error));
    return;
  }
  showNotice(describeError(error));
}

// -- the sidebar ------------------------------------------------------------------

const sessions = new SessionList({
  api,
  list: ui.sessionList,
  empty: ui.sessionsEmpty,
  more: ui.moreSessions,
  dialog: ui.deleteDialog,
  onOpen: (session) => {
    closeDrawer();
    if (session.session_id !== state.sessionId) openSession(session.session_id);
    ui.input.focus();
  },
  onDelete: deleteSession,
  onError: handleError,
});

async function deleteSession(session) {
  try {
    await api.deleteSession(session.session_id);
  } catch (error) {
    if (error?.status !== 404) {
      handleError(error);
      return;
    }
  }
  sessions.remove(session.session_id);
  announce(`Deleted “${titleOf(session)}”`);
  if (session.session_id === state.sessionId) newConversation();
  else ui.newChat.focus();
}

function setDrawer(open) {
  ui.layout.classList.toggle("drawer-open", open);
  ui.menu.setAttribute("aria-expanded", String(open));
  ui.scrim.hidden = !open;
  ui.chat.inert = open; // keep focus in the drawer while it covers the page
  if (open) ui.newChat.focus();
}

function closeDrawer() {
  if (ui.layout.classList.contains("drawer-open")) {
    setDrawer(false);
    ui.menu.focus();
  }
}

ui.menu.addEventListener("click", () => setDrawer(!ui.layout.classList.contains("drawer-open")));
window.matchMedia("(max-width: 760px)").addEventListener("change", (query) => {
  if (!query.matches) setDrawer(false); // wide again: the sidebar is no drawer
});
ui.scrim.addEventListener("click", closeDrawer);
document.addEventListener("keydown", (event) => {
  const dialogOpen = document.querySelector("dialog[open]") !== null; // Escape is the dialog's
  if (event.key === "Escape" && !dialogOpen && ui.layout.classList.contains("drawer-open")) {
    closeDrawer();
  }
});
ui.newChat.addEventListener("click", () => {
  closeDrawer();
  newConversation();
});

// -- the conversation ---------------------------------------------------------------

function nearBottom() {
  const box = ui.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function clearThread() {
  for (const node of [...ui.thread.children]) {
    if (node !== ui.earlier && node !== ui.empty) node.remove();
  }
  ui.earlier.hidden = true;
  ui.empty.hidden = false;
}

function appendToThread(...nodes) {
  ui.empty.hidden = true;
  ui.thread.append(...nodes);
}

function detachActive() {
  if (state.active) {
    state.active.stream.detach();
    state.active = null;
  }
  setStreaming(false);
}

function newConversation() {
  detachActive();
  state.view += 1;
  state.sessionId = null;
  state.agent = null;
  state.tokens = 0;
  state.oldestId = null;
  storage.sessionId = null;
  clearThread();
  hideNotice();
  ui.title.textContent = UNTITLED;
  document.title = "agenthost";
  showAgent(pickedAgent(), { locked: false });
  sessions.setCurrent(null);
  ui.input.focus();
}

async function openSession(sessionId) {
  detachActive();
  const view = ++state.view;
  state.sessionId = sessionId;
  storage.sessionId = sessionId;
  sessions.setCurrent(sessionId);
  hideNotice();
  clearThread();
  let session;
  try {
    session = await api.getSession(sessionId);
  } catch (error) {
    if (view !== state.view) return;
    if (error?.status === 404) {
      newConversation();
      sessions.remove(sessionId);
      showNotice("That conversation no longer exists.");
    } else {
      handleError(error);
    }
    return;
  }
  if (view !== state.view) return;
  state.agent = session.agent;
  state.tokens = session.tokens_used;
  state.oldestId = session.messages[0]?.id ?? null;
  setTitle(titleOf(session));
  showAgent(session.agent, { locked: true });
  const { elements, pendingRunId } = historyElements(session.messages);
  if (elements.length) appendToThread(...elements);
  ui.earlier.hidden = !session.has_more;
  scrollToEnd();
  if (pendingRunId) followRun(pendingRunId);
}

function setTitle(title) {
  ui.title.textContent = title;
  document.title = `${title} · agenthost`;
}

ui.earlier.addEventListener("click", async () => {
  if (!state.sessionId || !state.oldestId) return;
  const view = state.view;
  try {
    const page = await api.getSession(state.sessionId, { before: state.oldestId });
    if (view !== state.view) return;
    const { elements } = historyElements(page.messages);
    const anchor = ui.earlier.nextElementSibling;
    const height = ui.messages.scrollHeight;
    for (const node of elements) ui.thread.insertBefore(node, anchor);
    ui.messages.scrollTop += ui.messages.scrollHeight - height;
    state.oldestId = page.messages[0]?.id ?? state.oldestId;
    ui.earlier.hidden = !page.has_more;
  } catch (error) {
    handleError(error);
  }
});

function setStreaming(streaming) {
  ui.send.hidden = streaming;
  ui.stop.hidden = !streaming;
  ui.stop.disabled = false;
}

/** The handlers a ReplyStream calls, drawing into `reply`. */
function replyHandlers(reply, { baseline, onSession = () => {} }) {
  const view = state.view;
  let followBottom = true;
  reply.onRender = () => {
    if (followBottom) scrollToEnd();
  };
  return {
    session: (id) => onSession(id),
    run: (run) => {
      reply.setRunId(run.run_id);
      announce("The assistant is replying");
    },
    token: (text) => {
      followBottom = nearBottom();
      reply.appendText(text);
    },
    toolCall: (call) => reply.addToolCall(call),
    toolResult: (result) => reply.setToolResult(result),
    citations: (citations) => reply.addCitations(citations),
    done: (total) => {
      const stopped = state.active?.reply === reply && state.active.stopped;
      const tokens = baseline === null ? null : Math.max(0, total - baseline);
      if (view === state.view) state.tokens = total;
      reply.finish({ stopped, tokens, sessionTokens: total });
      if (followBottom) scrollToEnd();
      announce(stopped ? "Reply stopped" : "Reply complete");
    },
    error: (error) => {
      reply.finish({ stopped: state.active?.reply === reply && state.active.stopped });
      reply.fail(describeError(error));
      announce(describeError(error));
    },
    reconnecting: (attempt) => {
      if (attempt >= 1) showNotice("Connection lost. Reconnecting to the reply…");
    },
    reconnected: () => hideNotice(),
    lost: (reason) => {
      reply.finish();
      if (view === state.view) hideNotice();
      if (reason === "gone" && view === state.view && state.sessionId) {
        openSession(state.sessionId); // the reply's events are gone: show what was saved
        return;
      }
      reply.fail(
        "Lost the connection to this reply. It goes on on the server: " +
          "open the conversation again to see it.",
      );
    },
  };
}

async function runStream(reply, start, handlers) {
  const stream = new ReplyStream(api, handlers);
  const active = { stream, reply, stopped: false };
  state.active = active;
  setStreaming(true);
  reply.setBusy(true);
  try {
    await start(stream);
    return { stream, error: null };
  } catch (error) {
    return { stream, error: stream.signal.aborted ? null : error };
  } finally {
    if (state.active === active) {
      state.active = null;
      setStreaming(false);
    }
    if (reply.element.getAttribute("aria-busy") === "true" && !stream.signal.aborted) {
      reply.finish({ stopped: active.stopped });
    }
  }
}

async function send() {
  const text = ui.input.value;
  if (!text.trim() || state.active) return;
  hideNotice();
  ui.input.value = "";
  autosize();
  const question = userMessage(text);
  const reply = new ReplyView();
  appendToThread(question, reply.element);
  scrollToEnd();
  const isNew = state.sessionId === null;
  const agent = isNew ? ui.agent.value || null : state.agent;
  const body = { message: text };
  if (!isNew) body.session_id = state.sessionId;
  if (agent) body.agent = agent;
  const handlers = replyHandlers(reply, {
    baseline: isNew ? 0 : state.tokens,
    onSession: (id) => {
      if (!isNew || state.sessionId !== null) return;
      state.sessionId = id;
      state.agent = agent;
      storage.sessionId = id;
      showAgent(agent, { locked: true });
      setTitle(text.trim().split(/\s+/).join(" ")); // until the server's title is listed
      sessions.currentId = id;
      sessions.load().then(() => {
        const saved = sessions.find(id);
        if (saved && state.sessionId === id) setTitle(titleOf(saved));
      });
    },
  });
  const { stream, error } = await runStream(reply, (s) => s.send(body), handlers);
  if (error) {
    if (stream.lastId === 0) {
      // refused before anything started: nothing was stored, so give the message back
      question.remove();
      reply.element.remove();
      if (!ui.input.value) ui.input.value = text;
      autosize();
      if (!ui.thread.querySelector(".message")) ui.empty.hidden = false;
    } else {
      reply.fail(describeError(error));
    }
    handleError(error);
  } else if (isNew || stream.finished) {
    sessions.load();
  }
}

async function followRun(runId) {
  const reply = new ReplyView({ runId });
  appendToThread(reply.element);
  scrollToEnd();
  const handlers = replyHandlers(reply, { baseline: null });
  const { error } = await runStream(reply, (s) => s.attach(runId), handlers);
  if (error) {
    reply.element.remove();
    if (error.status !== 404) handleError(error);
  }
}

async function stop() {
  const active = state.active;
  if (!active) return;
  active.stopped = true;
  ui.stop.disabled = true;
  try {
    await active.stream.stop();
  } catch (error) {
    handleError(error);
  }
}

// -- the composer -----------------------------------------------------------------

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
ui.input.addEventListener("input", autosize);
ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    if (!state.active) send();
  } else if (event.key === "Escape" && state.active) {
    event.preventDefault();
    stop();
  }
});
ui.stop.addEventListener("click", stop);
ui.noticeClose.addEventListener("click", hideNotice);

// -- start ------------------------------------------------------------------------

async function refresh() {
  try {
    await loadAgents(api, state.sessionId === null ? null : state.agent);
  } catch (error) {
    handleError(error);
    return;
  }
  ui.keyButton.hidden = !storage.apiKey;
  await sessions.load();
  const sessionId = storage.sessionId;
  if (sessionId) await openSession(sessionId);
  else newConversation();
  document.documentElement.dataset.ready = "true"; // for tests and scripts: the page has loaded
}

setUpKeyPrompt(refresh);
refresh();
ui.input.focus();
