/**
 * One reply's event stream, followed to its end across dropped connections.
 *
 * Every event carries an increasing id. The stream remembers the last one it
 * handled; when the connection drops before `done` or `error`, it re-attaches
 * with `GET /runs/{id}/events` and `Last-Event-ID`, and drops any event whose id
 * it has already handled, so no text is lost or shown twice. If the connection
 * dropped before the `run` event named the run, it repeats the POST with the
 * same Idempotency-Key: the server answers with the same run (it never starts a
 * second reply), replayed from the start, and the ids skip what was seen.
 *
 * Nothing is ever sent again under a new key: a reply is regenerated only when
 * the user sends again.
 */
import { envelopeError, randomId } from "./api.js";
import { SseParser } from "./sse.js";

const MAX_ATTEMPTS = 8;
const FIRST_DELAY_MS = 250;

export class ReplyStream {
  /**
   * `handlers`: session(id), run({run_id, ...}), token(text), toolCall(call),
   * toolResult(result), citations(list), done(sessionTokens), error(ApiError),
   * reconnecting(attempt), reconnected(), lost().
   */
  constructor(api, handlers) {
    this.api = api;
    this.on = handlers;
    this.runId = null;
    this.sessionId = null;
    this.lastId = 0;
    this.finished = false;
    this.stopRequested = false;
    this.retryMs = 3000;
    this.controller = new AbortController();
  }

  get signal() {
    return this.controller.signal;
  }

  /** Send a message and follow its reply. HTTP errors before the stream starts are thrown. */
  async send(body) {
    const key = randomId();
    const post = () => this.api.streamChat(body, key, this.signal);
    const resume = () => this.api.runEvents(this.runId, this.lastId, this.signal);
    const again = () => (this.runId ? resume() : post());
    await this.follow(post, again);
  }

  /** Follow a run that is already going (after a reload, or coming back to its conversation). */
  async attach(runId) {
    this.runId = runId;
    const open = () => this.api.runEvents(runId, this.lastId, this.signal);
    await this.follow(open, open);
  }

  /** Stop the reply (what was generated is kept); the stream then ends with `done`. */
  async stop() {
    this.stopRequested = true;
    if (this.runId && !this.finished) await this.api.cancelRun(this.runId);
  }

  /** Stop watching; the reply goes on on the server and is saved. */
  detach() {
    this.controller.abort();
  }

  async follow(first, again) {
    let response = null;
    try {
      response = await first();
    } catch (error) {
      if (error?.status !== 0) throw error;
    }
    let attempt = 0;
    for (;;) {
      if (response !== null) {
        const before = this.lastId;
        try {
          await this.read(response);
        } catch (error) {
          if (this.signal.aborted) return;
          // the connection dropped mid-stream: resume below
        }
        if (this.lastId > before) attempt = 0;
      }
      if (this.finished || this.signal.aborted) return;
      if (attempt >= MAX_ATTEMPTS) {
        this.on.lost?.("disconnected");
        return;
      }
      this.on.reconnecting?.(attempt);
      await this.pause(attempt);
      attempt += 1;
      if (this.signal.aborted) return;
      try {
        response = await again();
        this.on.reconnected?.();
      } catch (error) {
        if (this.signal.aborted) return;
        if (error?.status === 404) {
          this.on.lost?.("gone");
          return;
        }
        const transient = error?.status === 0 || error?.status === 429 || error?.status >= 500;
        if (!transient) throw error;
        response = null;
      }
    }
  }

  async read(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser((event) => this.dispatch(event));
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
        if (this.finished) break;
      }
      parser.feed(decoder.decode());
      parser.end();
    } finally {
      if (parser.retry !== null) this.retryMs = parser.retry;
      reader.cancel().catch(() => {});
    }
  }

  dispatch(event) {
    if (this.finished) return;
    const id = Number(event.id);
    if (Number.isInteger(id) && id > 0) {
      if (id <= this.lastId) return; // already handled before the connection dropped
      this.lastId = id;
    }
    switch (event.type) {
      case "session":
        this.sessionId = event.data;
        this.on.session?.(event.data);
        break;
      case "run": {
        const run = JSON.parse(event.data);
        this.runId = run.run_id;
        this.on.run?.(run);
        if (this.stopRequested) this.api.cancelRun(this.runId).catch(() => {});
        break;
      }
      case "token":
        this.on.token?.(event.data);
        break;
      case "tool_call":
        this.on.toolCall?.(JSON.parse(event.data));
        break;
      case "tool_result":
        this.on.toolResult?.(JSON.parse(event.data));
        break;
      case "citations":
        this.on.citations?.(JSON.parse(event.data));
        break;
      case "error":
        this.finished = true;
        this.on.error?.(envelopeError(event.data));
        break;
      case "done":
        this.finished = true;
        this.on.done?.(Number(event.data));
        break;
      default:
        break; // an event this page does not know yet
    }
  }

  /** Wait before the next attempt: backing off up to the server's `retry`, and while offline. */
  pause(attempt) {
    const delay = Math.min(FIRST_DELAY_MS * 2 ** attempt, Math.max(this.retryMs, FIRST_DELAY_MS));
    return new Promise((resolve) => {
      let timer = null;
      const done = () => {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        this.signal.removeEventListener("abort", done);
        resolve();
      };
      timer = setTimeout(() => {
        if (navigator.onLine) done();
        // offline: wait for the "online" event (or the next check)
        else timer = setTimeout(done, Math.max(this.retryMs, 1000) * 4);
      }, delay);
      window.addEventListener("online", done);
      this.signal.addEventListener("abort", done);
    });
  }
}
