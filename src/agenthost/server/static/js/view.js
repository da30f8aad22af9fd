/**
 * The conversation's DOM: user messages, replies (text, tool steps, status,
 * usage, copy) and the history a session comes back with.
 *
 * User text is always set as text, never as HTML. Reply text goes through
 * markdown.js (sanitised). While a reply streams, it is re-rendered at most once
 * per animation frame, however fast tokens arrive.
 */
import { decorateCode, renderMarkdown } from "./markdown.js";
import { announce } from "./ui.js";

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "hidden") node.hidden = Boolean(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

export function icon(pathData) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", pathData);
  svg.append(path);
  return svg;
}

export const ICONS = {
  copy: "M9 9h10v11H9zM5 15V4h10",
  check: "M5 12l5 5L20 7",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13",
};

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall back below (permission refused, document not focused)
    }
  }
  const area = el("textarea", { className: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } finally {
    area.remove();
  }
  return copied;
}

export function copyButton(getText, label = "Copy", className = "copy") {
  const text = el("span", { text: "Copy" });
  const button = el(
    "button",
    { type: "button", className: `button subtle ${className}`, "aria-label": label, title: label },
    icon(ICONS.copy),
    text,
  );
  button.addEventListener("click", async () => {
    const copied = await copyText(getText());
    text.textContent = copied ? "Copied" : "Copy failed";
    announce(copied ? "Copied to the clipboard" : "Could not copy");
    setTimeout(() => {
      text.textContent = "Copy";
    }, 1500);
  });
  return button;
}

export function userMessage(text) {
  return el(
    "article",
    { className: "message user", "aria-label": "You" },
    el("div", { className: "bubble", text }),
  );
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text ?? "");
  }
}

export class ReplyView {
  constructor({ runId = null } = {}) {
    this.text = "";
    this.runId = runId;
    this.frame = null;
    this.onRender = null;
    this.steps = new Map();
    this.stepsBox = el("div", { className: "steps", hidden: true });
    this.content = el("div", { className: "content" });
    this.typing = el(
      "div",
      { className: "typing", "aria-hidden": "true" },
      el("span"),
      el("span"),
      el("span"),
    );
    this.badge = el("span", { className: "badge", hidden: true });
    this.usage = el("span", { className: "usage", hidden: true });
    this.meta = el("div", { className: "meta", hidden: true }, this.badge, this.usage);
    this.meta.append(copyButton(() => this.text, "Copy reply"));
    this.cited = new Set();
    this.sourceList = el("ol", { className: "source-list" });
    this.sources = el(
      "details",
      { className: "sources", hidden: true },
      el("summary", { text: "Sources" }),
      this.sourceList,
    );
    this.element = el(
      "article",
      { className: "message assistant", "aria-label": "Assistant" },
      this.stepsBox,
      this.content,
      this.typing,
      this.sources,
      this.meta,
    );
    if (runId) this.element.dataset.runId = runId;
  }

  setBusy(busy) {
    this.element.setAttribute("aria-busy", busy ? "true" : "false");
  }

  setRunId(runId) {
    this.runId = runId;
    this.element.dataset.runId = runId;
  }

  appendText(text) {
    this.text += text;
    this.frame ??= requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  render() {
    this.content.replaceChildren(renderMarkdown(this.text));
    this.onRender?.();
  }

  addToolCall({ id, name, arguments: args }) {
    const summary = el("summary", {}, "Using ", el("code", { text: name }), "…");
    const body = el(
      "div",
      { className: "step-body" },
      el("p", { className: "step-label", text: "Arguments" }),
      el("pre", {}, el("code", { text: prettyJson(args) })),
    );
    const step = el("details", { className: "step" }, summary, body);
    this.steps.set(id, { step, summary, body, name });
    this.stepsBox.append(step);
    this.stepsBox.hidden = false;
  }

  setToolResult({ id, name, result, error }) {
    let entry = this.steps.get(id);
    if (!entry) {
      this.addToolCall({ id, name, arguments: "" });
      entry = this.steps.get(id);
    }
    const failed = error !== undefined && error !== null;
    const label = el("code", { text: name ?? entry.name });
    entry.summary.replaceChildren(failed ? "Failed: " : "Used ", label);
    entry.step.classList.toggle("failed", failed);
    entry.body.append(
      el("p", { className: "step-label", text: failed ? "Error" : "Result" }),
      el("pre", {}, el("code", { text: String(failed ? error : (result ?? "")) })),
    );
  }

  /** Sources the reply cites (`citations` events): numbered as the text cites them. */
  addCitations(citations) {
    for (const { n, source, heading, snippet } of citations ?? []) {
      if (this.cited.has(n)) continue;
      this.cited.add(n);
      const name = heading ? `${source} › ${heading}` : source;
      this.sourceList.append(
        el(
          "li",
          { value: n },
          el("span", { className: "source", text: name }),
          el("q", { text: snippet }),
        ),
      );
      this.sources.hidden = false;
    }
  }

  /** The reply is complete: final render, code highlighting, status, usage, copy. */
  finish({ stopped = false, tokens = null, sessionTokens = null } = {}) {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.render();
    decorateCode(this.content, { copy: copyButton });
    this.setBusy(false);
    if (stopped) {
      this.badge.textContent = "Stopped";
      this.badge.hidden = false;
    }
    // Usage only when known: history does not keep it per message, and a reply stopped
    // before the model reported its usage has none recorded.
    if (tokens) {
      this.usage.textContent = `${tokens.toLocaleString()} tokens`;
      this.usage.title =
        "Tokens this reply used: the prompt sent to the model (with the conversation so far) " +
        `and its answer. The conversation has used ${sessionTokens?.toLocaleString()} in all.`;
      this.usage.hidden = false;
    }
    this.meta.hidden = false;
  }

  fail(message) {
    this.element.append(el("p", { className: "reply-error", role: "alert", text: message }));
  }
}

/**
 * A session's messages as page elements: each user message, then one reply
 * holding everything the agent did for it (tool steps, then its text). Also
 * returns the run of a last user message that has no reply yet (still running).
 */
export function historyElements(messages) {
  const results = new Map();
  for (const message of messages) {
    if (message.role === "tool") results.set(message.tool_call_id, message.content);
  }
  const elements = [];
  const replies = [];
  let reply = null;
  for (const message of messages) {
    if (message.role === "user") {
      reply = null;
      elements.push(userMessage(message.content));
    } else if (message.role === "assistant") {
      if (reply === null) {
        reply = new ReplyView({ runId: message.run_id });
        replies.push(reply);
        elements.push(reply.element);
      }
      for (const call of message.tool_calls ?? []) {
        reply.addToolCall(call);
        if (results.has(call.id)) {
          reply.setToolResult({ id: call.id, name: call.name, result: results.get(call.id) });
        }
      }
      reply.addCitations(message.citations);
      if (message.content) reply.text += (reply.text ? "\n\n" : "") + message.content;
    }
  }
  for (const each of replies) each.finish();
  const last = messages.at(-1);
  const pendingRunId = last?.role === "user" && last.run_id ? last.run_id : null;
  return { elements, pendingRunId };
}
