/**
 * The agenthost HTTP API, as the page uses it: JSON calls, event streams, and
 * one error type carrying the status, the server's message and Retry-After.
 *
 * The key (when the server needs one) is read at each call, so saving a new
 * key takes effect at once.
 */

export class ApiError extends Error {
  /** `status` 0 means the server could not be reached. */
  constructor(status, message, { retryAfter = null, detail = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfter = retryAfter;
    this.detail = detail;
  }
}

export class Api {
  constructor(getKey) {
    this.getKey = getKey;
  }

  headers(extra = {}) {
    const headers = { Accept: "application/json", ...extra };
    const key = this.getKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    return headers;
  }

  async request(method, path, { body, headers = {}, signal } = {}) {
    const init = { method, signal, cache: "no-store", headers: this.headers(headers) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      throw new ApiError(0, "Cannot reach the server.");
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async json(method, path, options) {
    const response = await this.request(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  agents() {
    return this.json("GET", "/agents");
  }

  listSessions(cursor = null) {
    const query = new URLSearchParams({ limit: "30" });
    if (cursor) query.set("cursor", cursor);
    return this.json("GET", `/sessions?${query}`);
  }

  getSession(sessionId, { before = null } = {}) {
    const query = new URLSearchParams({ limit: "100" });
    if (before) query.set("before", before);
    return this.json("GET", `/sessions/${encodeURIComponent(sessionId)}?${query}`);
  }

  deleteSession(sessionId) {
    return this.json("DELETE", `/sessions/${encodeURIComponent(sessionId)}`);
  }

  cancelRun(runId) {
    return this.json("POST", `/runs/${encodeURIComponent(runId)}/cancel`);
  }

  /** POST /chat/stream: the response, whose body is the event stream. */
  streamChat(body, idempotencyKey, signal) {
    return this.request("POST", "/chat/stream", {
      body,
      signal,
      headers: { Accept: "text/event-stream", "Idempotency-Key": idempotencyKey },
    });
  }

  /** GET /runs/{id}/events: the run's events after `lastId` (all of them for 0), then live ones. */
  runEvents(runId, lastId, signal) {
    const headers = { Accept: "text/event-stream" };
    if (lastId > 0) headers["Last-Event-ID"] = String(lastId);
    return this.request("GET", `/runs/${encodeURIComponent(runId)}/events`, { headers, signal });
  }
}

export async function errorOf(response) {
  let message = `The server answered ${response.status} ${response.statusText}`.trim();
  let detail = null;
  try {
    const body = await response.json();
    if (typeof body?.error === "string") message = body.error;
    detail = body?.detail ?? null;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, {
    retryAfter: retryAfterOf(response.headers.get("Retry-After")),
    detail,
  });
}

/** Seconds from a Retry-After header: a number of seconds, or an HTTP date. */
export function retryAfterOf(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

/** An error envelope carried by an `error` event. */
export function envelopeError(data) {
  try {
    const body = JSON.parse(data);
    return new ApiError(-1, typeof body.error === "string" ? body.error : String(data));
  } catch {
    return new ApiError(-1, String(data));
  }
}

/** A random id for Idempotency-Key (crypto.randomUUID needs HTTPS; getRandomValues does not). */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
