/**
 * What the page remembers in this browser (localStorage): the API key, the
 * open conversation and the agent picked for new ones. Storage can be off
 * (private modes, policies): the page then works for the visit and forgets.
 */
const PREFIX = "agenthost.";
const fallback = new Map();

function read(name) {
  try {
    return window.localStorage.getItem(PREFIX + name);
  } catch {
    return fallback.get(name) ?? null;
  }
}

function write(name, value) {
  try {
    if (value === null || value === "") window.localStorage.removeItem(PREFIX + name);
    else window.localStorage.setItem(PREFIX + name, value);
  } catch {
    if (value === null || value === "") fallback.delete(name);
    else fallback.set(name, value);
  }
}

export const storage = {
  get apiKey() {
    return read("apiKey");
  },
  set apiKey(value) {
    write("apiKey", value);
  },
  get sessionId() {
    return read("sessionId");
  },
  set sessionId(value) {
    write("sessionId", value);
  },
  get agent() {
    return read("agent");
  },
  set agent(value) {
    write("agent", value);
  },
};
