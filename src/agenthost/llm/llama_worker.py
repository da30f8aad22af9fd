"""``LlamaWorker``: the one thread that runs a loaded llama.cpp model's generations.

llama.cpp contexts are not thread-safe, so every generation of one model runs on
its worker thread, one at a time, in the order they were submitted. The worker
hands its output to a callback (``LocalChatModel`` passes one that goes through
``call_soon_threadsafe``) and checks the generation's ``cancelled`` event after
every token and between chunks of the prompt, so a cancelled generation stops
promptly and one cancelled while still queued never runs.

``generate`` (llama-cpp-python's own loop) keeps the KV cache of the longest
prefix the new prompt shares with the last one, so a conversation's next turn
only evaluates what is new.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agenthost.errors import ModelError, ModelUnavailableError
from agenthost.llm.base import FinishReason, TextDelta
from agenthost.llm.transcript import STOP_STRINGS, ReplyDecoder

logger = logging.getLogger(__name__)

_TOP_K, _TOP_P, _MIN_P = 40, 0.95, 0.1
_REPEAT_PENALTY = 1.1  # over the last 64 tokens: breaks the loops small models fall into
_PREFILL_CHUNK = 256  # prompt tokens evaluated between two checks for a cancel
_SHUT_DOWN = "The local model was shut down."


class Llama(Protocol):
    """The part of ``llama_cpp.Llama`` this module uses (the library is untyped)."""

    n_tokens: int  # how many tokens of ``input_ids`` are in the KV cache
    input_ids: Sequence[int]

    def tokenize(self, text: bytes, add_bos: bool = ..., special: bool = ...) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> bytes: ...

    def generate(
        self,
        tokens: Sequence[int],
        *,
        temp: float,
        top_k: int,
        top_p: float,
        min_p: float,
        repeat_penalty: float,
        reset: bool = ...,
    ) -> Generator[int, None, None]: ...

    def n_ctx(self) -> int: ...

    def close(self) -> None: ...

    @property
    def model(self) -> object: ...


@dataclass(frozen=True, slots=True)
class GenerationDone:
    completion_tokens: int
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class GenerationFailed:
    error: ModelError


GenerationOutput = TextDelta | GenerationDone | GenerationFailed


@dataclass(eq=False)
class Generation:
    """One generation: the prompt's tokens, how to sample, where the output goes."""

    tokens: list[int]
    max_tokens: int
    temperature: float
    deliver: Callable[[GenerationOutput], None]
    stops: tuple[str, ...] = STOP_STRINGS
    cancelled: threading.Event = field(default_factory=threading.Event)


class LlamaWorker:
    """The one thread that runs a loaded model's generations, one at a time, in order."""

    def __init__(self, llama: Llama, is_end: Callable[[int], bool], name: str) -> None:
        self._llama = llama
        self._is_end = is_end
        self._jobs: queue.SimpleQueue[Generation | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._lock = threading.Lock()  # nothing is queued after the closing sentinel
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Generation) -> None:
        with self._lock:
            if self._closing.is_set():
                job.deliver(GenerationFailed(ModelUnavailableError(_SHUT_DOWN)))
            else:
                self._jobs.put(job)

    def close(self) -> None:
        """Fail the running and queued jobs, then free the model; returns at once."""
        with self._lock:
            self._closing.set()
            self._jobs.put(None)

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                if not self._abandoned(job):
                    self._serve(job)
        finally:
            self._llama.close()

    def _abandoned(self, job: Generation) -> bool:
        """Whether to stop working on ``job``: its reader left, or the model is closing."""
        if self._closing.is_set() and not job.cancelled.is_set():
            job.cancelled.set()
            job.deliver(GenerationFailed(ModelUnavailableError(_SHUT_DOWN)))
        return job.cancelled.is_set()

    def _serve(self, job: Generation) -> None:
        try:
            done = self._sample(job) if self._prefill(job) else None
        except Exception:
            logger.exception("The local model failed while generating")
            job.deliver(
                GenerationFailed(ModelError("The local model failed while generating a reply."))
            )
            return
        if done is not None:
            job.deliver(done)

    def _prefill(self, job: Generation) -> bool:
        """Evaluate the prompt's uncached part a chunk at a time, so a cancel can land between.

        Each chunk goes through ``generate`` (which keeps the cached prefix) and the
        one token it samples is dropped; the last chunk is left to ``_sample``.
        """
        cached = _common_prefix(self._llama.input_ids[: self._llama.n_tokens], job.tokens)
        for end in range(cached + _PREFILL_CHUNK, len(job.tokens), _PREFILL_CHUNK):
            if self._abandoned(job):
                return False
            steps = self._steps(job.tokens[:end], temperature=0.0)
            next(steps)
            steps.close()
        return not self._abandoned(job)

    def _sample(self, job: Generation) -> GenerationDone | None:
        decoder = ReplyDecoder(job.stops)
        generated = 0
        reason: FinishReason = "length"
        steps = self._steps(job.tokens, temperature=job.temperature)
        try:
            for token in steps:
                if self._abandoned(job):
                    return None
                if self._is_end(token):
                    reason = "stop"
                    break
                generated += 1
                if text := decoder.feed(self._llama.detokenize([token])):
                    job.deliver(TextDelta(text))
                if decoder.stopped:
                    reason = "stop"
                    break
                if generated >= job.max_tokens:
                    break
        finally:
            steps.close()
        if text := decoder.finish():
            job.deliver(TextDelta(text))
        return GenerationDone(generated, reason)

    def _steps(self, tokens: list[int], *, temperature: float) -> Generator[int, None, None]:
        return self._llama.generate(
            tokens,
            temp=temperature,
            top_k=_TOP_K,
            top_p=_TOP_P,
            min_p=_MIN_P,
            repeat_penalty=_REPEAT_PENALTY,
        )


def _common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    length = 0
    for old, new in zip(cached, tokens, strict=False):
        if old != new:
            break
        length += 1
    return length
