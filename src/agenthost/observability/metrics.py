"""``Metrics``: the Prometheus metrics of one process, and the text ``GET /metrics`` serves.

Names are ``agenthost_<noun>_<unit>``; counters end ``_total``. Nothing exists
at import time: the composition root builds one ``Metrics`` per process, and
``prometheus_client`` itself is imported only then, because it decides at
import whether it runs in multiprocess mode.

Several workers (``agenthost serve --workers N``) are separate processes, each
counting what it serves. In multiprocess mode (``directory`` set) every process
writes its values to memory-mapped files in that one directory, and a scrape,
whichever worker answers it, sums the files of all of them: counts are exact
across workers. ``multiprocess_directory`` makes that directory for a server
before its workers start and removes it when the server exits. Gauges say how
to combine processes (``livesum``: the sum over living processes); a worker
that exits marks itself dead (``close``), and a scrape forgets the gauges of
processes that died without doing so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from agenthost.errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MULTIPROC_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
DIRECTORY_SETTING: Final = "AGENTHOST_METRICS_DIR"
UNMATCHED_ROUTE: Final = "unmatched"
"""The ``route`` label of a request no route matched (the raw path would explode the series)."""

HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
STORE_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
_Metric = TypeVar("_Metric", "Counter", "Gauge", "Histogram")
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Every metric agenthost exports, with one method per thing worth counting."""

    def __init__(self, *, directory: Path | None = None) -> None:
        if directory is not None:
            _use_directory(directory)
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.directory = directory
        # One registry per instance (apps built side by side, as in tests, never
        # collide); in multiprocess mode the values live in files, and a scrape
        # reads them through a registry of its own.
        self._registry: CollectorRegistry | None = (
            CollectorRegistry() if directory is None else None
        )
        registry = self._registry
        self.http_requests: Counter = Counter(
            "agenthost_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration: Histogram = Histogram(
            "agenthost_http_request_duration_seconds",
            "Time from a request's arrival to its response's end (a stream's end, for SSE).",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.first_token: Histogram = Histogram(
            "agenthost_time_to_first_token_seconds",
            "Time from a turn's start to its first token of text.",
            ["model", "agent"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.tokens: Counter = Counter(
            "agenthost_model_tokens_total",
            "Model tokens, in (prompt) and out (completion), by model and agent.",
            ["model", "agent", "direction"],
            registry=registry,
        )
        self.active_streams: Gauge = Gauge(
            "agenthost_active_streams",
            "Event streams (SSE responses) open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.runs: Counter = Counter(
            "agenthost_runs_total",
            "Turns (replies) ended, by agent and final status.",
            ["agent", "status"],
            registry=registry,
        )
        self.rate_limited: Counter = Counter(
            "agenthost_rate_limited_total",
            "Requests refused with 429, by the limit they were over.",
            ["limit"],
            registry=registry,
        )
        self.store_duration: Histogram = Histogram(
            "agenthost_store_operation_duration_seconds",
            "Time one session-store operation took, by operation and backend.",
            ["operation", "backend"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.circuit_open: Gauge = Gauge(
            "agenthost_model_circuit_open",
            "1 while a remote model's circuit breaker is open (requests fail fast), else 0.",
            ["model"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.circuit_opened: Counter = Counter(
            "agenthost_model_circuit_opened_total",
            "Times a remote model's circuit breaker opened (a failed probe re-opens it).",
            ["model"],
            registry=registry,
        )
        self.model_errors: Counter = Counter(
            "agenthost_model_errors_total",
            "Turns the model failed, by model and error kind (the error's class).",
            ["model", "kind"],
            registry=registry,
        )

        # Per request, the series are found in dicts of their own: ``labels()`` checks,
        # converts and locks on every call.
        self._requests: _Children[Counter] = _Children(self.http_requests)
        self._durations: _Children[Histogram] = _Children(self.http_duration)
        self._first_tokens: _Children[Histogram] = _Children(self.first_token)
        self._tokens: _Children[Counter] = _Children(self.tokens)
        self._runs: _Children[Counter] = _Children(self.runs)

    @property
    def multiprocess(self) -> bool:
        return self.directory is not None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self._requests(route, method, status).inc()
        self._durations(route, method).observe(seconds)

    def stream_opened(self) -> None:
        self.active_streams.inc()

    def stream_closed(self) -> None:
        self.active_streams.dec()

    def observe_first_token(self, model: str, agent: str, seconds: float) -> None:
        self._first_tokens(model, agent).observe(seconds)

    def count_tokens(self, model: str, agent: str, *, tokens_in: int, tokens_out: int) -> None:
        if tokens_in:
            self._tokens(model, agent, "in").inc(tokens_in)
        if tokens_out:
            self._tokens(model, agent, "out").inc(tokens_out)

    def count_run(self, agent: str, status: str) -> None:
        self._runs(agent, status).inc()

    def count_model_error(self, model: str, kind: str) -> None:
        self.model_errors.labels(model, kind).inc()

    def record_rate_limited(self, limit: str) -> None:
        """A request refused for being over ``limit`` (``requests``, ``tokens``, ``streams``)."""
        self.rate_limited.labels(limit).inc()

    def circuit_listener(self, model: str) -> Callable[[bool], None]:
        """What a model's breaker calls when it opens or closes; the series start at 0."""
        gauge = self.circuit_open.labels(model)
        opened = self.circuit_opened.labels(model)
        gauge.set(0)

        def changed(is_open: bool) -> None:
            gauge.set(1 if is_open else 0)
            if is_open:
                opened.inc()

        return changed

    def store_operation_timer(self, operation: str, backend: str) -> Callable[[float], None]:
        """Records the seconds one store operation took; its labels are looked up once."""
        return self.store_duration.labels(operation, backend).observe

    @property
    def content_type(self) -> str:
        from prometheus_client import CONTENT_TYPE_LATEST

        return str(CONTENT_TYPE_LATEST)

    def render(self) -> bytes:
        """The exposition text of every metric (of every process, in multiprocess mode).

        Reads files in multiprocess mode: call it off the event loop.
        """
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.directory is None:
            assert self._registry is not None
            return generate_latest(self._registry)
        _forget_dead_processes(self.directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.directory))  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """This process is leaving: its live gauges stop counting (its counters stay)."""
        if self.directory is not None:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid(), str(self.directory))  # type: ignore[no-untyped-call]


class _Children(Generic[_Metric]):
    """A labelled metric's series, by label values, each looked up once through ``labels()``."""

    __slots__ = ("_found", "_metric")

    def __init__(self, metric: _Metric) -> None:
        self._metric: _Metric = metric
        self._found: dict[tuple[object, ...], _Metric] = {}

    def __call__(self, *values: object) -> _Metric:
        child = self._found.get(values)
        if child is None:
            child = self._found[values] = self._metric.labels(*values)
        return child


@contextlib.contextmanager
def multiprocess_directory(configured: Path | None, *, processes: int) -> Iterator[Path | None]:
    """The metrics directory of a server with ``processes`` workers, set up before they start.

    ``configured`` (``AGENTHOST_METRICS_DIR``) is used as it is; with none and
    more than one process, a fresh temporary directory is made, and removed on
    exit. The environment carries the directory to the workers (and to
    ``prometheus_client``, which reads it from there).
    """
    if configured is None and processes <= 1:
        yield None
        return
    made = configured is None
    directory = Path(tempfile.mkdtemp(prefix="agenthost-metrics-")) if made else configured
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_VARIABLE] = str(directory)
    os.environ[DIRECTORY_SETTING] = str(directory)
    try:
        yield directory
    finally:
        if made:
            shutil.rmtree(directory, ignore_errors=True)


def _use_directory(directory: Path) -> None:
    """Point ``prometheus_client`` at ``directory`` before any metric is created."""
    if not directory.is_dir():
        raise ConfigurationError(f"The metrics directory {directory} does not exist")
    # prometheus_client reads the directory from the environment at each metric's creation.
    os.environ[MULTIPROC_VARIABLE] = str(directory)
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        raise ConfigurationError(
            f"prometheus_client was loaded before the metrics directory was set: set "
            f"{MULTIPROC_VARIABLE} in the environment of the server process instead"
        )


def _forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of workers that died without ``close`` (killed, crashed)."""
    from prometheus_client.multiprocess import mark_process_dead

    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
