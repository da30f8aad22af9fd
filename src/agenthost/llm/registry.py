"""``resolve_model``: from a ``provider:model`` id to a ``ChatModel``.

Providers: ``local`` (the embedded Gemma 3 270M, or ``local`` with
``AGENTHOST_LOCAL_MODEL_PATH`` for another GGUF file), ``openai:<model>`` (any
OpenAI-compatible server), ``test`` and ``test:slow`` (deterministic, no
network). Provider modules are imported only when asked for, so an install
without the ``[local]`` extra runs the others.
"""

from __future__ import annotations

from agenthost.errors import ConfigurationError
from agenthost.llm.base import ChatModel
from agenthost.llm.function import TestModel
from agenthost.settings import Settings

PROVIDERS = ("local", "openai:<model>", "test", "test:slow")
SLOW_TEST_DELAY = 0.05


def check_model_id(model_id: str) -> tuple[str, str]:
    """``(provider, name)`` of a valid id; ``ConfigurationError`` naming the valid ones else."""
    provider, _, name = model_id.strip().partition(":")
    valid = (
        (provider == "local" and not name)
        or (provider == "openai" and bool(name))
        or (provider == "test" and name in ("", "slow"))
    )
    if not valid:
        raise ConfigurationError(
            f"Unknown model id {model_id!r}. Use one of: {', '.join(PROVIDERS)}."
        )
    return provider, name


def resolve_model(model_id: str, settings: Settings) -> ChatModel:
    provider, name = check_model_id(model_id)
    if provider == "local":
        from agenthost.llm.local import LocalChatModel

        return LocalChatModel.from_settings(settings)
    if provider == "openai":
        from agenthost.llm.openai import OpenAIChatModel

        return OpenAIChatModel.from_settings(name, settings)
    if name == "slow":
        return TestModel(delay=SLOW_TEST_DELAY, model_id="test:slow")
    return TestModel()
