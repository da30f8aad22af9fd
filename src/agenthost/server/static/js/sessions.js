/**
 * The sidebar: the user's conversations, newest first, paged with "Show older".
 * Each row opens its conversation; its delete button asks for confirmation
 * in a modal dialog before anything is deleted.
 */
import { ICONS, el, icon } from "./view.js";

export const UNTITLED = "New conversation";

export function titleOf(session) {
  return session?.title?.trim() || UNTITLED;
}

function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], {
        month: "short",
        day: "numeric",
        year: date.getFullYear() === now.getFullYear() ? undefined : "numeric",
      });
}

export class SessionList {
  /** `onOpen(session)`, `onDelete(session)` (after the user confirmed). */
  constructor({ api, list, empty, more, dialog, onOpen, onDelete, onError }) {
    this.api = api;
    this.list = list;
    this.empty = empty;
    this.more = more;
    this.dialog = dialog;
    this.onOpen = onOpen;
    this.onDelete = onDelete;
    this.onError = onError;
    this.sessions = [];
    this.cursor = null;
    this.currentId = null;
    this.loaded = false;
    more.addEventListener("click", () => this.load({ append: true }));
  }

  async load({ append = false } = {}) {
    try {
      const page = await this.api.listSessions(append ? this.cursor : null);
      const known = new Set(append ? this.sessions.map((s) => s.session_id) : []);
      const fresh = page.sessions.filter((s) => !known.has(s.session_id));
      this.sessions = append ? [...this.sessions, ...fresh] : page.sessions;
      this.cursor = page.next_cursor;
      this.loaded = true;
      this.render();
    } catch (error) {
      this.onError(error);
    }
  }

  find(sessionId) {
    return this.sessions.find((s) => s.session_id === sessionId) ?? null;
  }

  setCurrent(sessionId) {
    this.currentId = sessionId;
    for (const row of this.list.children) {
      const current = row.dataset.sessionId === sessionId;
      row.classList.toggle("current", current);
      const open = row.querySelector(".session-open");
      if (current) open.setAttribute("aria-current", "page");
      else open.removeAttribute("aria-current");
    }
  }

  remove(sessionId) {
    this.sessions = this.sessions.filter((s) => s.session_id !== sessionId);
    this.render();
  }

  render() {
    const rows = this.sessions.map((session) => this.row(session));
    this.list.replaceChildren(...rows);
    this.empty.hidden = !this.loaded || this.sessions.length > 0;
    this.more.hidden = !this.cursor;
    this.setCurrent(this.currentId);
  }

  row(session) {
    const title = titleOf(session);
    const open = el(
      "button",
      { type: "button", className: "session-open" },
      el("span", { className: "session-title", text: title }),
      el("span", { className: "session-when", text: when(session.updated_at) }),
    );
    open.addEventListener("click", () => this.onOpen(session));
    const remove = el(
      "button",
      {
        type: "button",
        className: "button icon-button session-delete",
        "aria-label": `Delete “${title}”`,
        title: "Delete",
      },
      icon(ICONS.trash),
    );
    remove.addEventListener("click", () => this.confirmDelete(session, remove));
    const row = el("li", { className: "session" }, open, remove);
    row.dataset.sessionId = session.session_id;
    return row;
  }

  confirmDelete(session, opener) {
    const dialog = this.dialog;
    dialog.querySelector("#delete-name").textContent = titleOf(session);
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      async () => {
        if (dialog.returnValue === "delete") {
          await this.onDelete(session);
        } else if (opener.isConnected) {
          opener.focus();
        }
      },
      { once: true },
    );
    dialog.showModal();
  }
}
