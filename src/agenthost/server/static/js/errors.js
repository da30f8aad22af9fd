/** What went wrong, in words a user can act on: from an ApiError's status, message, Retry-After. */

export function waitText(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function withWait(text, seconds, fallback = "") {
  const sentence = /[.!?]$/.test(text) ? text : `${text}.`;
  const wait = waitText(seconds);
  return wait ? `${sentence} Try again in ${wait}.` : `${sentence}${fallback}`;
}

export function describeError(error) {
  const status = error?.status;
  const message = error?.message || "Something went wrong.";
  switch (status) {
    case 0:
      return "Cannot reach the server. Check your connection, then try again.";
    case 401:
      return /invalid/i.test(message)
        ? "The server did not accept this API key. Enter a valid key."
        : "This server needs an API key.";
    case 403:
      return `Not allowed: ${message}`;
    case 404:
      return message === "Session not found"
        ? "This conversation no longer exists."
        : `Not found: ${message}`;
    case 409:
      return (
        "This conversation is still answering an earlier message. " +
        "Wait for that reply to finish (or stop it), then send again."
      );
    case 413:
    case 422:
      return `The server refused the message: ${validationText(error)}`;
    case 429:
      return withWait(
        "Rate limited: too many requests or tokens for now.",
        error.retryAfter,
        " Wait a moment, then try again.",
      );
    case 502:
      return withWait(`The model is unavailable: ${message}`, error.retryAfter);
    case 503:
      return withWait(
        "The server is not ready (starting, shutting down, or its store is unavailable).",
        error.retryAfter ?? 5,
      );
    case 504:
      return `The model took too long to answer: ${message}`;
    case -1:
      return `The reply failed: ${message}`;
    default:
      return status >= 500 ? `The server failed (${status}): ${message}` : message;
  }
}

function validationText(error) {
  const detail = error?.detail;
  if (Array.isArray(detail) && detail.length > 0 && detail[0]?.msg) {
    return detail.map((item) => item.msg).join("; ");
  }
  return error?.message || "invalid request";
}
