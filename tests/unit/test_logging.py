"""Log formats: JSON lines with the context's ids and extra fields, or readable text."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterator

import pytest

from agenthost.observability import context
from agenthost.observability.logging import (
    HANDLER_NAME,
    ConsoleFormatter,
    JsonFormatter,
    configure_logging,
    ensure_logging,
    wants_json,
)
from agenthost.settings import Settings


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("agenthost.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


@contextlib.contextmanager
def ids(**values: str) -> Iterator[None]:
    """Set log-context ids for the block only."""
    tokens = [(getattr(context, name), getattr(context, name).set(v)) for name, v in values.items()]
    try:
        yield
    finally:
        for var, token in tokens:
            var.reset(token)


@pytest.fixture
def restored_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_json_line_has_the_fields_the_context_ids_and_the_extras() -> None:
    with ids(request_id="req-1", key_prefix="ah_abc"):
        line = JsonFormatter().format(record("hello %s", "world", route="/chat", status=200))
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["level"] == "info"
    assert entry["logger"] == "agenthost.test"
    assert entry["time"].endswith("Z")
    assert entry["pid"] == os.getpid()
    assert entry["request_id"] == "req-1"
    assert entry["key_prefix"] == "ah_abc"
    assert "session_id" not in entry
    assert (entry["route"], entry["status"]) == ("/chat", 200)
    assert list(entry)[-2:] == ["route", "status"]  # the extras, in the order given
    assert "\n" not in line


def test_a_json_line_carries_the_exception_and_odd_values_as_text() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    made.__dict__["when"] = object()
    entry = json.loads(JsonFormatter().format(made))
    assert "ValueError: boom" in entry["exception"]
    assert entry["when"].startswith("<object")


def test_a_json_line_times_the_record_in_utc_to_the_millisecond() -> None:
    formatter = JsonFormatter()
    times = []
    for created in (1_795_273_445.123456, 1_795_273_445.9994, 1_795_273_446.0):
        made = record()
        made.created, made.msecs = created, (created - int(created)) * 1000
        times.append(json.loads(formatter.format(made))["time"])
    assert times == [
        "2026-11-21T15:04:05.123Z",
        "2026-11-21T15:04:05.999Z",
        "2026-11-21T15:04:06.000Z",
    ]


def test_a_json_line_keeps_text_readable_and_survives_what_orjson_refuses() -> None:
    line = JsonFormatter().format(record("héllo 👋", big=2**70, odd="\ud800x"))
    assert "héllo 👋" in line  # UTF-8, not \u escapes
    entry = json.loads(line)
    assert (entry["message"], entry["big"], entry["odd"]) == ("héllo 👋", 2**70, "\ud800x")


def test_attributes_a_record_factory_adds_are_fields_as_extras_are(
    restored_root: logging.Logger,
) -> None:
    """A factory that adds attributes (a tracing library's trace id, say) still shows them."""
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        made = previous(*args, **kwargs)
        made.trace_id = "abc123"
        return made

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    restored_root.handlers[:] = [handler]
    logging.setLogRecordFactory(factory)
    try:
        logging.getLogger("agenthost.test").warning("hi", extra={"route": "/chat"})
    finally:
        logging.setLogRecordFactory(previous)
    entry = json.loads(stream.getvalue())
    assert (entry["trace_id"], entry["route"], entry["message"]) == ("abc123", "/chat", "hi")
    assert "msg" not in entry
    assert "levelno" not in entry


@pytest.mark.parametrize("line_buffering", [True, False])
def test_each_line_reaches_the_stream_at_once_buffered_or_not(
    restored_root: logging.Logger, monkeypatch: pytest.MonkeyPatch, line_buffering: bool
) -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", line_buffering=line_buffering)
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(Settings(log_format="json", log_level="info"))
    logging.getLogger("agenthost.test").info("first")
    logging.getLogger("agenthost.test").info("second")
    lines = raw.getvalue().decode().splitlines()  # what the file descriptor would have
    assert [json.loads(line)["message"] for line in lines] == ["first", "second"]


def test_the_console_format_is_one_readable_line() -> None:
    with ids(run_id="run-9"):
        line = ConsoleFormatter().format(record("POST /chat %d", 200, latency_ms=1.5))
    assert " INFO    agenthost.test: POST /chat 200  " in line
    assert "run_id=run-9" in line
    assert "latency_ms=1.5" in line


def test_the_console_format_keeps_a_forged_line_on_its_own_line() -> None:
    line = ConsoleFormatter().format(record("GET %s 404", "/x\n12:00:00.000 INFO    fake: y"))
    assert "\n" not in line
    assert "/x\\n12:00" in line


def test_auto_is_json_unless_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert wants_json("auto")
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not wants_json("auto")
    assert wants_json("json")
    assert not wants_json("console")


def test_configure_logging_installs_one_handler_and_routes_uvicorn_through_it(
    restored_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json", log_level="WARNING"))
    configure_logging(Settings(log_format="json", log_level="WARNING"))
    ours = [h for h in restored_root.handlers if h.get_name() == HANDLER_NAME]
    assert len(ours) == 1
    assert restored_root.level == logging.WARNING
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("uvicorn.access").warning("a duplicate of our access log")
    logging.getLogger("agenthost.test").info("below the level")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == ["from uvicorn"]


def test_ensure_logging_leaves_a_configured_process_alone(
    restored_root: logging.Logger,
) -> None:
    restored_root.handlers[:] = [logging.NullHandler()]
    ensure_logging(Settings(log_format="json"))
    assert [h.get_name() for h in restored_root.handlers] == [None]
    restored_root.handlers[:] = []
    ensure_logging(Settings(log_format="json"))
    assert [h.get_name() for h in restored_root.handlers] == [HANDLER_NAME]


class _Keeper(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def test_records_skip_the_process_lookup_and_lines_still_carry_each_process_id(
    restored_root: logging.Logger,
) -> None:
    source_file = logging._srcfile
    configure_logging(Settings(log_format="json"))
    try:
        kept: list[logging.LogRecord] = []
        keeper = _Keeper(kept)
        logger = logging.getLogger("agenthost.test.lookups")
        logger.addHandler(keeper)
        logger.warning("x")
        logger.removeHandler(keeper)
        # Neither the thread nor the calling function is looked up: no format shows them.
        assert (kept[0].thread, kept[0].funcName) == (None, "(unknown function)")
        made = record()
        assert made.process is None  # no getpid system call per record
        assert json.loads(JsonFormatter().format(made))["pid"] == os.getpid()
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # a forked child logs its own id, not its parent's
            os.write(writing, JsonFormatter().format(record()).encode())
            os._exit(0)
        os.close(writing)
        with os.fdopen(reading, "rb") as pipe:
            line = pipe.read()
        os.waitpid(child, 0)
        assert json.loads(line)["pid"] == child
    finally:
        logging.logProcesses = logging.logMultiprocessing = logging.logThreads = True
        logging._srcfile = source_file
