"""The composition root: ``open_services(settings)`` builds everything a process runs on.

The CLI and the web app both call it; nothing else constructs models or
registries. Whatever it opens, it closes on exit. It also opens the knowledge
index (beside the sessions, see ``knowledge.url``) and, unless turned off,
brings agenthost's own docs into it, so the ``faq`` and ``research`` agents
answer from them out of the box.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from agenthost.agent.definition import Agent
from agenthost.agents.builtin import assistant_agent
from agenthost.agents.knowledge import faq_agent, research_agent
from agenthost.agents.registry import AgentRegistry, is_reference, load_agents
from agenthost.auth.authenticator import (
    AnonymousAuthenticator,
    Authenticator,
    StoreAuthenticator,
)
from agenthost.auth.keys import Limits
from agenthost.clock import Clock, SystemClock
from agenthost.knowledge.base import KnowledgeIndex, Retriever
from agenthost.knowledge.bundled import sync_bundled_docs
from agenthost.knowledge.context import KnowledgeOptions
from agenthost.knowledge.url import open_knowledge_index
from agenthost.llm.base import ChatModel
from agenthost.llm.breaker import CircuitBreakerModel, with_circuit_breaker
from agenthost.llm.registry import resolve_model
from agenthost.observability.telemetry import Telemetry, create_telemetry
from agenthost.observability.timed_store import timed_store
from agenthost.ratelimit.base import RateLimiter
from agenthost.ratelimit.limiter import LimitsRateLimiter
from agenthost.runs.cancel_bus import RedisCancelBus
from agenthost.runs.log import MemoryRunEventLog, RunEventLog
from agenthost.runs.manager import RunManager
from agenthost.settings import Settings
from agenthost.stores.base import RunId, Store
from agenthost.stores.url import open_store


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    model: ChatModel
    agents: AgentRegistry
    knowledge: KnowledgeIndex


def create_agent_registry(
    settings: Settings,
    clock: Clock,
    *,
    agent: str | None = None,
    knowledge: Retriever | None = None,
) -> AgentRegistry:
    """The built-in agents, those of ``settings.agents``, and ``agent`` (a name or reference).

    A reference passed as ``agent`` also becomes the default agent. With
    ``knowledge``, the knowledge agents (``faq``, ``research``) are hosted too,
    unless one of the user's agents has the same name: the user's wins.
    """
    users: list[Agent] = []
    for reference in settings.agents:
        users.extend(load_agents(reference))
    default = agent or settings.agent
    if is_reference(default):
        loaded = load_agents(default)
        users.extend(loaded)
        default = loaded[0].name
    hosted = [assistant_agent(clock)]
    if knowledge is not None:
        options = knowledge_options(settings)
        taken = {a.name for a in users}
        builtin = [faq_agent(knowledge, options), research_agent(knowledge, options)]
        hosted += [a for a in builtin if a.name not in taken]
    return AgentRegistry([*hosted, *users], default=default)


def knowledge_options(settings: Settings) -> KnowledgeOptions:
    return KnowledgeOptions(
        kb=settings.knowledge_base, min_coverage=settings.knowledge_min_coverage
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    model_id: str | None = None,
    agent: str | None = None,
    clock: Clock | None = None,
    model: ChatModel | None = None,
) -> AsyncIterator[Services]:
    """Build the services; ``model`` (an instance) wins over ``model_id`` and the settings."""
    clock = clock or SystemClock()
    async with open_knowledge_index(
        settings.knowledge_url(), clock=clock, options=settings.store_options()
    ) as knowledge:
        if settings.knowledge_bundled_docs:
            await sync_bundled_docs(knowledge, kb=settings.knowledge_base)
        agents = create_agent_registry(settings, clock, agent=agent, knowledge=knowledge)
        chat_model = model or with_circuit_breaker(
            resolve_model(model_id or settings.resolved_model_id(), settings), settings, clock=clock
        )
        try:
            yield Services(
                settings=settings,
                clock=clock,
                model=chat_model,
                agents=agents,
                knowledge=knowledge,
            )
        finally:
            await chat_model.aclose()


@dataclass(frozen=True)
class ServerServices:
    """What the web service runs on: the core services, the store and the runs."""

    core: Services
    store: Store
    runs: RunManager
    holder: str
    authenticator: Authenticator
    limiter: RateLimiter
    telemetry: Telemetry
    cancel_bus: RedisCancelBus | None = None


def create_run_log(settings: Settings, clock: Clock) -> RunEventLog:
    """Run events in this process, mirrored to Redis when workers and replicas share one."""
    local = MemoryRunEventLog(retention=settings.run_retention_seconds, clock=clock)
    if settings.redis_url is None:
        return local
    from agenthost.runs.redis_log import RedisRunEventLog

    return RedisRunEventLog(
        settings.redis_url,
        retention=settings.run_retention_seconds,
        max_age=settings.max_turn_seconds + settings.run_retention_seconds,
        local=local,
    )


def process_holder() -> str:
    """A name for this process's leases: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def open_server_services(
    settings: Settings,
    *,
    model: ChatModel | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[ServerServices]:
    clock = clock or SystemClock()
    options = settings.store_options()
    async with (
        open_services(settings, model=model, clock=clock) as untraced,
        open_store(settings.database_url, clock=clock, options=options) as opened,
    ):
        telemetry = create_telemetry(settings, clock=clock)
        if isinstance(untraced.model, CircuitBreakerModel):
            untraced.model.on_change(telemetry.metrics.circuit_listener(untraced.model.model_id))
        store = timed_store(opened, telemetry.metrics)
        core = replace(untraced, model=telemetry.wrap_model(untraced.model))
        holder = process_holder()
        log = create_run_log(settings, clock)
        runs = RunManager(
            store=store,
            log=log,
            agents=core.agents,
            model=core.model,
            clock=clock,
            holder=holder,
            lease_ttl=settings.lease_ttl_seconds,
            history_messages=settings.history_messages,
            max_turn_seconds=settings.max_turn_seconds,
            max_steps=settings.max_tool_steps,
            telemetry=telemetry,
        )
        defaults = Limits(
            rpm=settings.rate_limit_rpm,
            tpm=settings.rate_limit_tpm,
            max_streams=settings.max_streams,
        )
        authenticator: Authenticator = (
            StoreAuthenticator(
                store, clock, defaults=defaults, cache_seconds=settings.auth_cache_seconds
            )
            if settings.auth == "keys"
            else AnonymousAuthenticator(defaults)
        )
        limiter = LimitsRateLimiter.create(
            settings.redis_url, stream_ttl=settings.max_turn_seconds + 60
        )
        cancel_bus = None
        if settings.redis_url is not None:
            cancel_bus = RedisCancelBus(
                settings.redis_url, lambda run_id: runs.cancel(RunId(run_id))
            )
            await cancel_bus.start()
        try:
            yield ServerServices(
                core=core,
                store=store,
                runs=runs,
                holder=holder,
                authenticator=authenticator,
                limiter=limiter,
                telemetry=telemetry,
                cancel_bus=cancel_bus,
            )
        finally:
            if cancel_bus is not None:
                await cancel_bus.aclose()
            await log.aclose()
            await limiter.aclose()
            await telemetry.aclose()
