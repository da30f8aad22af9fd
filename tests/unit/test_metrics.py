"""Metrics: names and labels, the timed store, and the directory workers share."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import SessionNotFoundError
from agenthost.observability.metrics import (
    DIRECTORY_SETTING,
    MULTIPROC_VARIABLE,
    Metrics,
    _forget_dead_processes,
    multiprocess_directory,
)
from agenthost.observability.timed_store import timed_store
from agenthost.stores.base import SessionId
from agenthost.testing import MemorySessionStore
from tests.support.metrics import Scrape


def test_every_metric_is_named_by_the_house_rule() -> None:
    metrics = Metrics()
    metrics.observe_request("/chat", "POST", 200, 0.1)
    metrics.observe_first_token("test", "assistant", 0.05)
    metrics.count_tokens("test", "assistant", tokens_in=3, tokens_out=2)
    metrics.count_run("assistant", "completed")
    metrics.count_model_error("test", "ModelTimeoutError")
    metrics.record_rate_limited("tokens")
    metrics.store_operation_timer("begin_turn", "memory")(0.001)
    metrics.circuit_listener("openai:gpt")(True)
    scrape = Scrape(metrics.render().decode())
    families = {name for name, _ in scrape.samples if not name.endswith("_created")}
    assert families >= {
        "agenthost_http_requests_total",
        "agenthost_http_request_duration_seconds_count",
        "agenthost_time_to_first_token_seconds_count",
        "agenthost_model_tokens_total",
        "agenthost_active_streams",
        "agenthost_runs_total",
        "agenthost_rate_limited_total",
        "agenthost_store_operation_duration_seconds_count",
        "agenthost_model_errors_total",
        "agenthost_model_circuit_open",
        "agenthost_model_circuit_opened_total",
    }
    assert (
        scrape.value(
            "agenthost_model_tokens_total", model="test", agent="assistant", direction="out"
        )
        == 2
    )
    assert scrape.value("agenthost_model_errors_total", model="test", kind="ModelTimeoutError") == 1


def test_unknown_http_methods_share_one_label() -> None:
    metrics = Metrics()
    metrics.observe_request("unmatched", "BREW", 405, 0.01)
    metrics.observe_request("unmatched", "PROPFIND", 405, 0.01)
    scrape = Scrape(metrics.render().decode())
    labels = {"route": "unmatched", "method": "other", "status": "405"}
    assert scrape.value("agenthost_http_requests_total", **labels) == 2


def test_the_same_labels_count_into_one_series_and_others_into_their_own() -> None:
    metrics = Metrics()
    for status, seconds in ((200, 0.002), (200, 0.3), (404, 0.001)):
        metrics.observe_request("/chat", "POST", status, seconds)
    metrics.count_tokens("m", "a", tokens_in=3, tokens_out=4)
    metrics.count_tokens("m", "a", tokens_in=5, tokens_out=0)
    metrics.count_tokens("m", "b", tokens_in=1, tokens_out=1)
    scrape = Scrape(metrics.render().decode())
    requests, durations = "agenthost_http_requests_total", "agenthost_http_request_duration_seconds"
    chat = {"route": "/chat", "method": "POST"}
    assert scrape.value(requests, status="200", **chat) == 2
    assert scrape.value(requests, status="404", **chat) == 1
    assert scrape.value(durations + "_count", **chat) == 3
    assert scrape.value(durations + "_bucket", le="0.005", **chat) == 2
    assert scrape.value(durations + "_sum", **chat) == pytest.approx(0.303)
    tokens = "agenthost_model_tokens_total"
    assert scrape.value(tokens, model="m", agent="a", direction="in") == 8
    assert scrape.value(tokens, model="m", agent="a", direction="out") == 4
    assert scrape.value(tokens, model="m", agent="b", direction="in") == 1


def test_two_instances_never_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.count_run("assistant", "completed")
    assert (
        Scrape(second.render().decode()).value(
            "agenthost_runs_total", agent="assistant", status="completed"
        )
        == 0
    )


async def test_the_timed_store_times_each_operation_and_passes_the_rest_through() -> None:
    metrics = Metrics()
    inner = MemorySessionStore(clock=ManualClock())
    store = timed_store(inner, metrics)
    session = await store.create_session(owner=None, agent="assistant")
    await store.get_session(session.id)
    with pytest.raises(SessionNotFoundError):
        await store.get_session(SessionId("00000000-0000-0000-0000-000000000000"))
    assert store.backend == "memory"
    assert store.create_session.__name__ == "create_session"
    scrape = Scrape(metrics.render().decode())
    count = "agenthost_store_operation_duration_seconds_count"
    assert scrape.value(count, operation="create_session", backend="memory") == 1
    assert scrape.value(count, operation="get_session", backend="memory") == 2  # failures too


def test_one_process_needs_no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)
    with multiprocess_directory(None, processes=1) as directory:
        assert directory is None
        assert MULTIPROC_VARIABLE not in os.environ


def test_several_processes_get_a_fresh_directory_removed_on_exit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)
    monkeypatch.delenv(DIRECTORY_SETTING, raising=False)
    with multiprocess_directory(None, processes=2) as directory:
        assert directory is not None
        assert directory.is_dir()
        assert os.environ[MULTIPROC_VARIABLE] == os.environ[DIRECTORY_SETTING] == str(directory)
        (directory / "counter_1.db").write_bytes(b"")
    assert not directory.exists()


def test_a_configured_directory_is_used_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)
    monkeypatch.delenv(DIRECTORY_SETTING, raising=False)
    chosen = tmp_path / "metrics"
    with multiprocess_directory(chosen, processes=1) as directory:
        assert directory == chosen
        assert os.environ[MULTIPROC_VARIABLE] == str(chosen)
    assert chosen.is_dir()


def test_the_live_gauges_of_dead_processes_are_forgotten(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    (tmp_path / f"gauge_livesum_{dead_pid}.db").write_bytes(b"")
    (tmp_path / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead_pid}.db").write_bytes(b"")
    _forget_dead_processes(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead_pid}.db", f"gauge_livesum_{os.getpid()}.db"]
    )


WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agenthost.observability.metrics import Metrics

    metrics = Metrics(directory=Path(sys.argv[1]))
    for _ in range(int(sys.argv[2])):
        metrics.observe_request("/chat", "POST", 200, 0.01)
    metrics.stream_opened()
    if sys.argv[3] == "close":
        metrics.close()
    else:
        print(metrics.render().decode())
    """
)


def test_processes_sharing_a_directory_are_summed(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROC_VARIABLE: str(tmp_path)}

    def worker(count: int, then: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(tmp_path), str(count), then],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout

    worker(3, "close")
    worker(4, "close")
    scrape = Scrape(worker(5, "render"))
    labels = {"route": "/chat", "method": "POST", "status": "200"}
    assert scrape.value("agenthost_http_requests_total", **labels) == 12
    assert (
        scrape.value("agenthost_http_request_duration_seconds_count", route="/chat", method="POST")
        == 12
    )
    assert scrape.value("agenthost_active_streams") == 1  # only the living process's stream
