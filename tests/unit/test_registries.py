"""Model ids, agent registries and user agents loaded by reference."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agenthost import Agent, Message, Settings, resolve_model, run_turn
from agenthost.agents.registry import AgentRegistry, load_agents
from agenthost.errors import AgentNotFoundError, ConfigurationError
from agenthost.services import create_agent_registry, open_services
from agenthost.testing import ManualClock, TestModel


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTHOST_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return Settings(cache_dir=tmp_path / "cache")


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    package = tmp_path / "mybots"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agents.py").write_text(
        textwrap.dedent(
            """
            from agenthost import Agent, tool

            @tool
            def shout(text: str) -> str:
                '''Upper-case the text.'''
                return text.upper()

            support = Agent(name="support", instructions="Help.", tools=(shout,))
            team = [support, Agent(name="sales", instructions="Sell.")]
            not_an_agent = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mybots.agents"
    for name in [m for m in sys.modules if m.startswith("mybots")]:
        del sys.modules[name]


def test_default_model_is_local_unless_openai_is_configured(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.resolved_model_id() == "local"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert Settings().resolved_model_id() == "openai:gpt-4o-mini"
    monkeypatch.setenv("AGENTHOST_OPENAI_MODEL", "gpt-4.1")
    assert Settings().resolved_model_id() == "openai:gpt-4.1"
    monkeypatch.setenv("AGENTHOST_MODEL", "test")
    assert Settings().resolved_model_id() == "test"


def test_base_url_alone_selects_the_openai_provider(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    assert Settings().resolved_model_id() == "openai:gpt-4o-mini"


def test_resolve_model_knows_the_test_models(settings: Settings) -> None:
    assert resolve_model("test", settings).model_id == "test"
    assert resolve_model("test:slow", settings).model_id == "test:slow"


@pytest.mark.parametrize("model_id", ["gpt-4", "openai:", "local:extra", "test:fast", ""])
def test_resolve_model_rejects_unknown_ids(settings: Settings, model_id: str) -> None:
    with pytest.raises(ConfigurationError, match="Unknown model id"):
        resolve_model(model_id, settings)


def test_registry_has_the_builtin_assistant(settings: Settings) -> None:
    registry = create_agent_registry(settings, ManualClock())
    assistant = registry.get()
    assert assistant.name == "assistant"
    assert assistant.toolset.names == ("calculator", "current_time")
    with pytest.raises(AgentNotFoundError, match="available: assistant"):
        registry.get("nobody")


def test_user_agents_load_by_reference(settings: Settings, user_module: str) -> None:
    assert [a.name for a in load_agents(f"{user_module}:team")] == ["support", "sales"]
    registry = create_agent_registry(settings, ManualClock(), agent=f"{user_module}:support")
    assert registry.default == "support"
    assert registry.names == ("assistant", "support")


def test_agents_from_settings_are_hosted_too(settings: Settings, user_module: str) -> None:
    with_team = settings.model_copy(update={"agents": [f"{user_module}:team"]})
    registry = create_agent_registry(with_team, ManualClock(), agent="sales")
    assert registry.names == ("assistant", "support", "sales")
    assert registry.default == "sales"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("mybots.agents", "must look like"),
        ("mybots.nothing:x", "cannot import 'mybots.nothing'"),
        ("mybots.agents:missing", "has no attribute 'missing'"),
        ("mybots.agents:not_an_agent", "is a int, not an Agent"),
    ],
)
def test_bad_references_are_clear_errors(user_module: str, reference: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_agents(reference)


def test_agent_definitions_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="agent name"):
        Agent(name="Bad Name!", instructions="x")
    with pytest.raises(ConfigurationError, match="max_steps"):
        Agent(name="ok", instructions="x", max_steps=0)
    with pytest.raises(AgentNotFoundError):
        AgentRegistry([], default="assistant")


async def test_services_run_the_assistant_with_tools_on_the_test_model(
    settings: Settings,
) -> None:
    async with open_services(settings, model_id="test") as services:
        agent = services.agents.get()
        result = await run_turn(
            agent, services.model, [], Message.user('/call calculator {"expression": "6*7"}')
        )
        assert [o.content for o in result.tool_outcomes] == ["42"]
        assert result.text == "calculator returned: 42"
        plain = await run_turn(agent, services.model, [], Message.user("héllo  there\n"))
        assert plain.text == "You said: héllo  there\n"
    assert isinstance(services.model, TestModel)
    assert services.model.closed
