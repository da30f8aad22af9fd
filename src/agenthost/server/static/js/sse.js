/**
 * An incremental Server-Sent Events parser, written from the WHATWG spec
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream).
 *
 * EventSource cannot POST or send an Authorization header, so the page reads
 * streams with fetch and parses them here. Feed it decoded text as it arrives,
 * in pieces of any size; it calls `onEvent({type, data, id})` for each complete
 * event. Lines end with LF, CR or CRLF (a CR at the end of a piece waits for the
 * next one, as it may be half of a CRLF); `data` lines are joined with LF;
 * comments (`: ping`) are skipped; `id` persists from event to event; an event
 * not ended by a blank line when the stream stops is dropped, as the spec says:
 * a cut connection never delivers half an event.
 */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.data = [];
    this.type = "";
    this.lastEventId = "";
    this.retry = null;
    this.lineEnd = /\r\n|\r|\n/g;
  }

  feed(text) {
    const buffer = this.buffer + text;
    const lineEnd = this.lineEnd;
    lineEnd.lastIndex = 0;
    let start = 0;
    let match;
    while ((match = lineEnd.exec(buffer)) !== null) {
      if (match[0] === "\r" && match.index === buffer.length - 1) break;
      this.line(buffer.slice(start, match.index));
      start = lineEnd.lastIndex;
    }
    this.buffer = buffer.slice(start);
  }

  /** The stream ended: a line ended by a lone CR is complete; an unfinished event is dropped. */
  end() {
    if (this.buffer.endsWith("\r")) this.line(this.buffer.slice(0, -1));
    this.buffer = "";
    this.data = [];
    this.type = "";
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.type = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
  }

  dispatch() {
    if (this.data.length === 0) {
      this.type = "";
      return;
    }
    const type = this.type || "message";
    const event = { type, data: this.data.join("\n"), id: this.lastEventId };
    this.data = [];
    this.type = "";
    this.onEvent(event);
  }
}
