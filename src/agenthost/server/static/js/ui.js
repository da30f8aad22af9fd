/** The page's elements by role, and its notice and status (screen reader) regions. */

const $ = (id) => document.getElementById(id);
export const ui = {
  layout: $("layout"),
  chat: $("chat"),
  menu: $("menu"),
  scrim: $("scrim"),
  sidebar: $("sidebar"),
  newChat: $("new-chat"),
  sessionList: $("session-list"),
  sessionsEmpty: $("sessions-empty"),
  moreSessions: $("more-sessions"),
  keyButton: $("key-button"),
  title: $("chat-title"),
  agent: $("agent"),
  agentPicker: $("agent-picker"),
  agentDescription: $("agent-description"),
  messages: $("messages"),
  thread: $("thread"),
  earlier: $("earlier"),
  empty: $("empty"),
  emptyAgent: $("empty-agent"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeClose: $("notice-close"),
  composer: $("composer"),
  input: $("composer-input"),
  send: $("send"),
  stop: $("stop"),
  keyDialog: $("key-dialog"),
  keyForm: $("key-form"),
  keyReason: $("key-reason"),
  keyInput: $("key-input"),
  keyCancel: $("key-cancel"),
  keyForget: $("key-forget"),
  deleteDialog: $("delete-dialog"),
  status: $("status"),
};

export function announce(text) {
  ui.status.textContent = "";
  requestAnimationFrame(() => {
    ui.status.textContent = text;
  });
}

export function showNotice(text) {
  ui.noticeText.textContent = text;
  ui.notice.hidden = false;
}

export function hideNotice() {
  ui.notice.hidden = true;
}
