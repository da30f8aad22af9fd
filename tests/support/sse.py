"""A strict Server-Sent Events parser for tests, written from the WHATWG spec."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    id: str | None
    event: str
    data: str


@dataclass
class Parsed:
    events: list[Event]
    comments: list[str]
    retry: int | None


def parse(text: str) -> Parsed:
    """Parse a whole stream (used on complete bodies)."""
    parser = Parser()
    events = list(parser.feed(text))
    return Parsed(events, parser.comments, parser.retry)


class Parser:
    """Incremental: feed text as it arrives, get complete events back."""

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.last_id: str | None = None
        self.comments: list[str] = []
        self.retry: int | None = None

    def feed(self, text: str) -> Iterable[Event]:
        self._buffer += text
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1] :]
            event = self._line(line)
            if event is not None:
                yield event

    def _line(self, line: str) -> Event | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = Event(self._id, self._event or "message", "\n".join(self._data))
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        match field:
            case "data":
                self._data.append(value)
            case "event":
                self._event = value
            case "id":
                self._id = self.last_id = value
            case "retry" if value.isdigit():
                self.retry = int(value)
            case _:
                pass
        return None


def _line_end(buffer: str) -> tuple[int, int] | None:
    for index, char in enumerate(buffer):
        if char == "\n":
            return index, index + 1
        if char == "\r":
            if index + 1 == len(buffer):
                return None  # may be a CRLF split across reads
            return index, index + (2 if buffer[index + 1] == "\n" else 1)
    return None


async def events_of(chunks: AsyncIterator[str]) -> AsyncIterator[Event]:
    parser = Parser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event


def tokens(events: Iterable[Event]) -> str:
    return "".join(e.data for e in events if e.event == "token")
