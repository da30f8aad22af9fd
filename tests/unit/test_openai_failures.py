"""``OpenAIChatModel`` when the server fails: error mapping, the four timeouts, retries.

Provider errors become the agenthost tree with messages a person can act on;
retries happen only before the first chunk; the text before a mid-stream
failure has already reached the caller.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agenthost.errors import (
    ModelError,
    ModelRateLimitedError,
    ModelRequestRejectedError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from agenthost.llm.base import TextDelta
from agenthost.llm.openai import OpenAIChatModel
from agenthost.llm.openai_errors import UpstreamErrors, host_of, retry_after_seconds
from agenthost.llm.openai_stream import END_AFTER_DONE_SECONDS
from tests.support.mock_openai import (
    Drop,
    ErrorReply,
    MockOpenAIServer,
    Pause,
    StreamReply,
    role_chunk,
    text_chunk,
    text_reply,
)
from tests.support.openai_models import (
    API_KEY,
    Models,
    collect,
    collect_until_error,
    text_of,
    wait_for_disconnect,
)
from tests.support.raw_http import CHUNKED_HEAD, ScriptedServer, chunked, ok, sends


@pytest.fixture
async def server() -> AsyncIterator[MockOpenAIServer]:
    async with MockOpenAIServer() as server:
        yield server


@pytest.fixture
async def models(server: MockOpenAIServer) -> AsyncIterator[Models]:
    async with Models(server) as models:
        yield models


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error_type", "message"),
    [
        (
            ErrorReply(401, f"Incorrect API key provided: {API_KEY}"),
            ModelRequestRejectedError,
            "rejected the API key (401). Check OPENAI_API_KEY.",
        ),
        (ErrorReply(403, "no access"), ModelRequestRejectedError, "(403)"),
        (
            ErrorReply(400, f"maximum context length exceeded for key {API_KEY}"),
            ModelRequestRejectedError,
            "rejected the request (400): maximum context length exceeded for key [API key]",
        ),
        (ErrorReply(404, "no such model"), ModelRequestRejectedError, "does not know model"),
        (ErrorReply(422, "bad schema"), ModelRequestRejectedError, "(422): bad schema"),
        (ErrorReply(500, "boom"), ModelUnavailableError, "failed (HTTP 500)"),
        (ErrorReply(503, "busy"), ModelUnavailableError, "failed (HTTP 503)"),
        (
            ErrorReply(429, "slow down", headers={"Retry-After": "7"}),
            ModelRateLimitedError,
            "rate limiting requests (429); retry after 7s",
        ),
    ],
)
async def test_provider_errors_map_to_the_error_tree(
    server: MockOpenAIServer,
    models: Models,
    reply: ErrorReply,
    error_type: type[ModelError],
    message: str,
) -> None:
    server.add(reply)
    events, error = await collect_until_error(models.make())
    assert events == []
    assert type(error) is error_type
    assert message in error.message
    assert f"The model server at {host_of(server.base_url)} " in error.message
    assert API_KEY not in str(error)
    assert "Traceback" not in str(error)


async def test_rate_limit_error_carries_retry_after(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(ErrorReply(429, headers={"Retry-After": "120"}))
    _, error = await collect_until_error(models.make(max_retries=3))
    assert isinstance(error, ModelRateLimitedError)
    assert error.retry_after == 120
    assert len(server.requests) == 1  # longer than max_retry_after: left to the caller


async def test_unreachable_server_is_unavailable(models: Models) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = models.make(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    _, error = await collect_until_error(model)
    assert isinstance(error, ModelUnavailableError)
    assert f"Cannot reach the model server at 127.0.0.1:{port}" in error.message


async def test_malformed_chunk_mid_stream_is_unavailable(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((role_chunk(), text_chunk("Hel"), '{"choices": [')))
    events, error = await collect_until_error(models.make(max_retries=2))
    assert events == [TextDelta("Hel")]
    assert isinstance(error, ModelUnavailableError)
    assert "malformed stream chunk" in error.message
    assert len(server.requests) == 1


async def test_a_chunk_only_pythons_json_parser_takes_is_still_read(
    server: MockOpenAIServer, models: Models
) -> None:
    # NaN is not JSON, and orjson refuses it; servers written in Python send it anyway.
    odd = '{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"score":NaN}'
    server.add(StreamReply((role_chunk(), text_chunk("Hel"), odd)))
    events = await collect(models.make())
    assert text_of(events) == "Hello"


async def test_error_event_mid_stream_is_unavailable(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((text_chunk("Hel"), {"error": {"message": "engine overloaded"}})))
    events, error = await collect_until_error(models.make())
    assert events == [TextDelta("Hel")]
    assert isinstance(error, ModelUnavailableError)
    assert "reported an error mid-reply: engine overloaded" in error.message


async def test_connection_reset_mid_stream_keeps_text_and_is_not_retried(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((role_chunk(), text_chunk("Hel"), Drop())), text_reply("again"))
    events, error = await collect_until_error(models.make(max_retries=3))
    assert events == [TextDelta("Hel")]
    assert isinstance(error, ModelUnavailableError)
    assert len(server.requests) == 1


async def test_a_server_that_never_accepts_is_a_connect_timeout() -> None:
    # A listening socket whose accept queue is full: the kernel drops further SYNs,
    # so connecting hangs until the connect timeout, as with a black-holed address.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        host, port = listener.getsockname()
        filler = socket.create_connection((host, port), timeout=5)  # the queue's one place
        model = OpenAIChatModel(
            "gpt-test", api_key=API_KEY, base_url=f"http://{host}:{port}/v1", connect_timeout=0.3
        )
        try:
            started = time.monotonic()
            _, error = await collect_until_error(model)
        finally:
            await model.aclose()
            filler.close()
    assert isinstance(error, ModelTimeoutError)
    assert error.phase == "connect"
    assert "within 0.3s (connect timeout)" in error.message
    assert "AGENTHOST_OPENAI_CONNECT_TIMEOUT" in error.message
    assert time.monotonic() - started < 5


def test_error_bodies_that_are_not_json_still_map_by_status() -> None:
    errors = UpstreamErrors("example.test", "gpt-test", connect_timeout=2.5)
    now = datetime.now(UTC)
    rejected = errors.from_status(400, {}, b"<html>bad gateway config</html>", now=now)
    assert isinstance(rejected, ModelRequestRejectedError)
    assert rejected.message == "The model server at example.test rejected the request (400)."
    failed = errors.from_status(502, {}, b"", now=now)
    assert isinstance(failed, ModelUnavailableError)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 01 Jan 2025 00:00:30 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_from_headers(headers: dict[str, str], seconds: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(headers, now=now) == seconds


def test_host_of_hides_credentials_and_path() -> None:
    assert host_of("https://user:pw@api.example.com/v1") == "api.example.com"
    assert host_of("http://127.0.0.1:8000/v1") == "127.0.0.1:8000"
    assert host_of("user:secret@not-a-url") == "not-a-url"


# -- retries -------------------------------------------------------------------


async def test_server_errors_before_the_first_chunk_are_retried(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(ErrorReply(500), ErrorReply(502), text_reply("ok"))
    events = await collect(models.make(max_retries=2))
    assert text_of(events) == "ok"
    assert len(server.requests) == 3


async def test_retries_stop_at_max_retries(server: MockOpenAIServer, models: Models) -> None:
    server.add(ErrorReply(500), ErrorReply(500), ErrorReply(500), text_reply("never"))
    _, error = await collect_until_error(models.make(max_retries=2))
    assert isinstance(error, ModelUnavailableError)
    assert len(server.requests) == 3


async def test_rejected_requests_are_not_retried(server: MockOpenAIServer, models: Models) -> None:
    server.add(ErrorReply(400, "bad"), text_reply("never"))
    _, error = await collect_until_error(models.make(max_retries=3))
    assert isinstance(error, ModelRequestRejectedError)
    assert len(server.requests) == 1


async def test_rate_limit_waits_for_retry_after_then_succeeds(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(ErrorReply(429, headers={"retry-after-ms": "300"}), text_reply("ok"))
    started = time.monotonic()
    events = await collect(models.make(max_retries=1))
    assert text_of(events) == "ok"
    assert len(server.requests) == 2
    assert time.monotonic() - started >= 0.3


async def test_first_token_timeout_is_retried(server: MockOpenAIServer, models: Models) -> None:
    server.add(StreamReply((Pause(5), text_chunk("late"))), text_reply("ok"))
    events = await collect(models.make(first_token_timeout=0.2, max_retries=1))
    assert text_of(events) == "ok"
    assert len(server.requests) == 2
    await wait_for_disconnect(server)


# -- timeouts ------------------------------------------------------------------


async def test_any_first_chunk_ends_the_first_token_wait_and_the_retries(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((role_chunk(), Pause(5), text_chunk("late"))), text_reply("again"))
    events, error = await collect_until_error(models.make(idle_timeout=0.2, max_retries=2))
    assert events == []
    assert isinstance(error, ModelTimeoutError)
    assert error.phase == "idle"
    assert len(server.requests) == 1


async def test_first_token_timeout_when_no_chunk_comes(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((Pause(5), text_chunk("late"))))
    _, error = await collect_until_error(models.make(first_token_timeout=0.2, idle_timeout=5))
    assert isinstance(error, ModelTimeoutError)
    assert error.phase == "first_token"
    assert "AGENTHOST_OPENAI_FIRST_TOKEN_TIMEOUT" in error.message
    await wait_for_disconnect(server)


async def test_first_token_timeout_when_headers_are_late(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((text_chunk("late"),), headers_delay=5))
    _, error = await collect_until_error(models.make(first_token_timeout=0.2))
    assert isinstance(error, ModelTimeoutError)
    assert error.phase == "first_token"


async def test_idle_timeout_mid_stream_keeps_the_text_before_it(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((role_chunk(), text_chunk("Hel"), Pause(5), text_chunk("lo"))))
    events, error = await collect_until_error(models.make(idle_timeout=0.2, max_retries=3))
    assert events == [TextDelta("Hel")]
    assert isinstance(error, ModelTimeoutError)
    assert error.phase == "idle"
    assert "AGENTHOST_OPENAI_IDLE_TIMEOUT" in error.message
    assert len(server.requests) == 1
    await wait_for_disconnect(server)


async def test_a_stream_longer_than_the_idle_limit_with_short_gaps_runs_to_its_end(
    server: MockOpenAIServer, models: Models
) -> None:
    # One timer serves every wait of the reply and is re-armed lazily: the idle
    # limit must count from each chunk, not from the first wait it was armed for.
    steps = [step for _ in range(12) for step in (Pause(0.05), text_chunk("x"))]
    server.add(StreamReply(tuple(steps)))
    events = await collect(models.make(idle_timeout=0.25, total_timeout=5))
    assert text_of(events) == "x" * 12


async def test_total_timeout_bounds_a_stream_that_never_idles(
    server: MockOpenAIServer, models: Models
) -> None:
    steps = [step for _ in range(20) for step in (Pause(0.05), text_chunk("x"))]
    server.add(StreamReply(tuple(steps)))
    events, error = await collect_until_error(models.make(idle_timeout=1, total_timeout=0.4))
    assert isinstance(error, ModelTimeoutError)
    assert error.phase == "total"
    assert "AGENTHOST_OPENAI_TOTAL_TIMEOUT" in error.message
    assert 0 < len(text_of(events)) < 20


async def test_done_ends_the_reply_when_the_body_does_not_end_after_it() -> None:
    hi = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'

    async def never_ends(writer: asyncio.StreamWriter) -> bool:
        writer.write(CHUNKED_HEAD + chunked(hi) + chunked(b"data: [DONE]\n\n"))
        await writer.drain()
        await asyncio.sleep(30)  # and never the chunked body's end
        return False

    again = ok(hi + b"data: [DONE]\n\n", "Content-Type: text/event-stream")
    async with ScriptedServer(never_ends, sends(again)) as server:
        model = OpenAIChatModel("m", base_url=server.url("/v1"), idle_timeout=10)
        started = time.monotonic()
        assert text_of(await collect(model)) == "hi"
        assert time.monotonic() - started < END_AFTER_DONE_SECONDS + 1  # not the idle timeout
        assert text_of(await collect(model)) == "hi"
        await model.aclose()
    assert server.connections == 2  # the unfinished one was not reused
