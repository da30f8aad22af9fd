"""``LocalChatModel`` (id ``local``): the embedded Gemma 3 270M, run in-process by llama.cpp.

It is the default model, so that agenthost answers offline with nothing to
configure. What it can do: short factual answers and short conversational replies,
in English best, at about 50-75 tokens/s on two idle CPU cores. What it cannot: call
tools (``supports_tools`` is False, so the agent loop offers none), follow long
instructions, reason over several steps, or write long text reliably; about half
of its answers to simple factual questions are right. It is a 270M-parameter
*base* model with no chat template, so it is prompted with a plain transcript and
stopped where it starts the next turn (see ``agenthost.llm.transcript``). Any other
GGUF file can be run instead through ``local_model_path`` (id ``local:<file name>``; a
copy of the bundled file, as in the container image, keeps the id ``local``).

Threading: llama.cpp contexts are not thread-safe, so each loaded model has one
worker thread that runs one generation at a time, in arrival order, and hands each
piece of text to the event loop with ``call_soon_threadsafe``. Closing the stream
sets an event the worker checks after every token (and every 256 prompt tokens
while a long prompt is evaluated), so generation stops promptly; a request still
queued when its stream is closed never runs. Prompts that share a prefix with the
previous one reuse llama.cpp's KV cache (see ``agenthost.llm.llama_worker``).

Loading happens in ``start()`` (in a thread) or, failing that, on first use;
``count_tokens`` before ``start()`` loads synchronously, so call ``start()`` first
(the composition root does). While the model loads, llama-cpp-python points the
process's stdout and stderr at /dev/null for about half a second.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from types import ModuleType
from typing import ClassVar, assert_never

from agenthost.errors import ConfigurationError, ContextWindowExceededError
from agenthost.llm.base import ModelEvent, ModelFinished, ModelRequest, TextDelta, UsageReported
from agenthost.llm.llama_worker import (
    Generation,
    GenerationDone,
    GenerationFailed,
    GenerationOutput,
    Llama,
    LlamaWorker,
)
from agenthost.llm.transcript import (
    ANSWER_STOPS,
    STOP_STRINGS,
    render_answer_prompt,
    render_prompt,
)
from agenthost.llm.weights import BUNDLED_FILE_NAME, import_extra, resolve_weights
from agenthost.messages import Usage
from agenthost.settings import Settings

logger = logging.getLogger(__name__)
llama_logger = logging.getLogger("agenthost.llama_cpp")

DEFAULT_TEMPERATURE = 0.2
"""Near-greedy: sampling any hotter makes a 270M model's factual answers much worse."""


@dataclass(frozen=True, slots=True)
class _Loaded:
    llama: Llama
    worker: LlamaWorker
    context_window: int


class LocalChatModel:
    """The embedded llama.cpp model; one instance per process holds one copy of the weights."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        path = settings.local_model_path
        named = path is not None and path.name != BUNDLED_FILE_NAME
        self._model_id = f"local:{path.name}" if path is not None and named else "local"
        self._start_lock = asyncio.Lock()
        self._load_lock = threading.Lock()
        self._loaded: _Loaded | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalChatModel:
        """The model ``local`` configured by the ``local_*`` settings (nothing loads yet)."""
        return cls(settings)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def context_window(self) -> int:
        loaded = self._loaded
        return loaded.context_window if loaded else self._settings.local_context_window

    @property
    def supports_tools(self) -> bool:
        return False

    async def start(self) -> None:
        if self._loaded is not None:
            return
        async with self._start_lock:
            if self._loaded is None:
                await asyncio.to_thread(self._load)

    def count_tokens(self, text: str) -> int:
        """Exact, by the model's tokenizer (no BOS); loads the model if ``start()`` was not run."""
        llama = (self._loaded or self._load()).llama
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        await self.start()
        loaded = self._loaded or self._load()
        answer = request.style == "answer"
        prompt = (render_answer_prompt if answer else render_prompt)(request.messages)
        tokens = loaded.llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        max_tokens = request.max_tokens or self._settings.local_max_reply_tokens
        if len(tokens) + max_tokens > loaded.context_window:
            raise ContextWindowExceededError(
                f"The prompt takes {len(tokens)} tokens and the reply may take {max_tokens}, "
                f"but the local model's context window is {loaded.context_window} tokens."
            )
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue[GenerationOutput] = asyncio.Queue()

        def deliver(output: GenerationOutput) -> None:
            try:
                loop.call_soon_threadsafe(outputs.put_nowait, output)
            except RuntimeError:  # the event loop is closed: nobody is listening
                job.cancelled.set()

        stops = ANSWER_STOPS if answer else STOP_STRINGS
        job = Generation(tokens, max_tokens, max(temperature, 0.0), deliver, stops)
        loaded.worker.submit(job)
        try:
            while True:
                output = await outputs.get()
                match output:
                    case TextDelta():
                        yield output
                    case GenerationDone(completion_tokens=completion, reason=reason):
                        yield UsageReported(Usage(len(tokens), completion))
                        yield ModelFinished(reason)
                        return
                    case GenerationFailed(error=error):
                        raise error
                    case _:
                        assert_never(output)
        finally:
            job.cancelled.set()

    async def aclose(self) -> None:
        async with self._start_lock:
            with self._load_lock:
                loaded, self._loaded = self._loaded, None
            if loaded is not None:
                loaded.worker.close()
                await asyncio.to_thread(loaded.worker.join)

    def _load(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = _open(self._settings, self._model_id)
            return self._loaded


def _open(settings: Settings, model_id: str) -> _Loaded:
    module = import_extra("llama_cpp")
    path = resolve_weights(settings)
    _LlamaLog.install(module)
    threads = settings.local_threads or os.cpu_count() or 1
    logger.info("Loading the local model %s from %s", model_id, path)
    try:
        llama: Llama = module.Llama(
            model_path=str(path),
            n_ctx=settings.local_context_window,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except ValueError as error:
        raise ConfigurationError(
            f"Could not load {str(path)!r} as a model: is it a GGUF file llama.cpp supports?"
        ) from error
    vocab = module.llama_model_get_vocab(llama.model)

    def is_end(token: int) -> bool:
        return bool(module.llama_vocab_is_eog(vocab, token))

    worker = LlamaWorker(llama, is_end, name=f"agenthost-{model_id}")
    return _Loaded(llama, worker, llama.n_ctx())


class _LlamaLog:
    """Forwards llama.cpp's native log to the ``agenthost.llama_cpp`` logger.

    llama-cpp-python 0.3.36 maps ggml's log levels wrongly (its warnings print to
    stderr even with ``verbose=False``, its errors never do), so it is replaced
    once per process, on the first load.
    """

    # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line.
    LEVELS: ClassVar[dict[int, int]] = {
        1: logging.DEBUG,
        2: logging.DEBUG,
        3: logging.INFO,
        4: logging.ERROR,
    }
    callback: ClassVar[object | None] = None  # llama.cpp calls it later: keep it alive
    level: ClassVar[int] = logging.DEBUG
    lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def install(cls, module: ModuleType) -> None:
        with cls.lock:
            if cls.callback is None:
                cls.callback = module.llama_log_callback(cls.forward)
                module.llama_log_set(cls.callback, ctypes.c_void_p(0))

    @classmethod
    def forward(cls, level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level != 5:
            cls.level = cls.LEVELS.get(level, logging.DEBUG)
        line = text.decode("utf-8", errors="replace").rstrip()
        if line:
            llama_logger.log(cls.level, "%s", line)
