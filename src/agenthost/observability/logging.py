"""``configure_logging(settings)``: one handler on stderr, JSON lines or readable text.

Every record goes to the root logger's one handler, agenthost's own, uvicorn's
and libraries' alike, so a deployment gets one format on one stream. A JSON
line is one object: ``time``, ``level``, ``logger``, ``message``, ``pid``, the
ids of the log context (request, session, run, key prefix: see ``context``)
and the record's ``extra`` fields. The console format shows the same fields
after the message, as ``name=value``.

What is never logged: API keys (only their prefix, from the context), and the
text of messages and replies unless ``AGENTHOST_LOG_CONTENT`` asks for it (see
``telemetry``). The handler writes synchronously: a line is a few hundred
bytes, and a log pipe that stops draining is a broken deployment anyway.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Final, TextIO

import orjson

from agenthost.observability import context

if TYPE_CHECKING:
    from agenthost.settings import Settings

HANDLER_NAME = "agenthost"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
UVICORN_ACCESS_LOGGER = "uvicorn.access"  # silenced: ``server.access`` logs each request

# What every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    {
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "taskName",
        "message",
        "asctime",
        "color_message",  # uvicorn's copy of the message with ANSI colours
    }
)
_OWN_ATTRIBUTES: Final = len(logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__)
"""How many attributes ``LogRecord.__init__`` sets (on this Python), ``extra`` coming after."""
_LEVELS: Final = {name: name.lower() for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}


def configure_logging(settings: Settings) -> None:
    """Route every log record to stderr in the configured format and level.

    Safe to call again (the handler it installed before is replaced).
    """
    # Records need not ask the OS for the process id (a system call per record):
    # the JSON line takes it from ``_process_id``, and nothing here shows the name.
    # Nor look up the thread, or walk the stack for the calling function and line:
    # neither format shows them (the logging HOWTO's "Optimization" switches).
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logThreads = False
    logging._srcfile = None
    _process_id.watch_forks()
    handler = _StderrHandler()
    handler.set_name(HANDLER_NAME)
    formatter = JsonFormatter() if wants_json(settings.log_format) else ConsoleFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger(UVICORN_ACCESS_LOGGER)
    access.handlers[:] = [logging.NullHandler()]
    access.propagate = False


def ensure_logging(settings: Settings) -> None:
    """``configure_logging``, unless whoever runs this process configured logging already."""
    if not logging.getLogger().handlers:
        configure_logging(settings)


def wants_json(log_format: str) -> bool:
    if log_format == "auto":
        return not sys.stderr.isatty()
    return log_format == "json"


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The context's ids, then the record's ``extra`` fields."""
    fields: dict[str, object] = context.snapshot()
    attributes = record.__dict__
    # ``extra`` lands after what LogRecord.__init__ sets, so only the tail needs a look
    # (what a formatter or filter adds later, such as ``message``, is filtered out there).
    for key in itertools.islice(attributes, _OWN_ATTRIBUTES, None):
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
            fields[key] = attributes[key]
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _timestamp(record),
            "level": _LEVELS.get(record.levelname) or record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process if record.process is not None else _process_id(),
        }
        entry.update(record_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return dumps_line(entry)


def dumps_line(entry: dict[str, object]) -> str:
    """``entry`` as one line of JSON, in UTF-8 (no ASCII escapes).

    Values JSON has no type for are written as orjson writes them (ISO 8601 for
    dates and times), or as their ``str()``.
    """
    try:
        return orjson.dumps(entry, default=str).decode()
    except TypeError:  # what orjson refuses (a lone surrogate, an int over 64 bits)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``12:00:00.123 INFO    agenthost.access: POST /chat 200  request_id=... route=/chat``."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        line = f"{time} {record.levelname:<7} {record.name}: {_one_line(record.getMessage())}"
        fields = record_fields(record)
        if fields:
            line += "  " + " ".join(f"{key}={_one_line(str(v))}" for key, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (test runners swap it).

    A line-buffered stream (stderr is, since Python 3.9) has written the line
    when ``write`` returns; any other is flushed after each record.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = stream = sys.stderr
        try:
            stream.write(self.format(record) + self.terminator)
            if not getattr(stream, "line_buffering", False):
                stream.flush()
        except RecursionError:  # as logging.StreamHandler.emit does
            raise
        except Exception:
            self.handleError(record)


class _ProcessId:
    """This process's id, asked for once, and again in a forked child."""

    def __init__(self) -> None:
        self._value: int | None = None
        self._watching = False

    def __call__(self) -> int:
        if self._value is None:
            self._value = os.getpid()
        return self._value

    def watch_forks(self) -> None:
        if not self._watching:
            self._watching = True
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._value = None


_process_id = _ProcessId()


class _Timestamps:
    """``2026-11-21T15:04:05.123Z`` for a record, the date and time formatted once a second."""

    _MILLIS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))

    def __init__(self) -> None:
        self._last = (-1, "")  # one attribute, replaced whole: safe across threads

    def __call__(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        last_second, prefix = self._last
        if second != last_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._last = (second, prefix)
        return prefix + self._MILLIS[int(record.msecs)]


_timestamp = _Timestamps()


def _one_line(text: str) -> str:
    """A request path or a message cannot start a fake log line of its own."""
    return text.replace("\r", "\\r").replace("\n", "\\n")
