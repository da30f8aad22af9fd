"""``RunManager``: starts replies as runs owned by the server, not by an HTTP connection.

``start`` checks the request and, in one store step, takes the session's
lease, stores the user's message and opens the run, before the model is
called; then it runs the turn as a task of its own, started eagerly: its first
step, up to the model's request, runs before ``start`` returns
(``runs.eager``). The task publishes numbered events to the run event log
(from which any number of clients follow, or resume), renews the lease while
it works, and when the turn ends (completed, failed, cancelled or interrupted)
stores what was produced, partial text included, and gives the lease back, in
one transaction, then publishes the final event.

A client that disconnects changes nothing: the run finishes and is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from agenthost.agent.definition import Agent
from agenthost.agent.loop import TurnCompleted, TurnOptions, stream_turn
from agenthost.agent.progress import TurnProgress
from agenthost.agents.registry import AgentRegistry
from agenthost.clock import Clock
from agenthost.errors import (
    AgentHostError,
    ModelTimeoutError,
    RunNotFoundError,
    ServerStoppingError,
    SessionBusyError,
    StoreError,
)
from agenthost.llm.base import ChatModel, count_message_tokens
from agenthost.messages import Message
from agenthost.observability import context
from agenthost.observability.telemetry import Telemetry
from agenthost.runs.eager import start_task
from agenthost.runs.events import RunEvent
from agenthost.runs.log import RunEventLog
from agenthost.runs.publisher import RunPublisher
from agenthost.runs.turn import (
    Finisher,
    RunInfo,
    RunOutcome,
    StartedRun,
    StopReason,
    TurnRequest,
)
from agenthost.stores import ids
from agenthost.stores.base import (
    FinalRunStatus,
    Lease,
    NewMessage,
    OwnerFilter,
    RunId,
    SessionId,
    Store,
    TakeLease,
)

logger = logging.getLogger(__name__)

TITLE_CHARS = 80


@dataclass
class _LiveRun:
    info: RunInfo
    agent: Agent
    user_message: Message
    lease: Lease
    options: TurnOptions
    publisher: RunPublisher
    outcome: asyncio.Future[RunOutcome]
    finishers: tuple[Finisher, ...] = ()
    new_session: bool = False  # made for this message: there is no history to read
    stop_reason: StopReason | None = None
    timed_out: bool = False
    lease_lost: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class RunManager:
    def __init__(
        self,
        *,
        store: Store,
        log: RunEventLog,
        agents: AgentRegistry,
        model: ChatModel,
        clock: Clock,
        holder: str,
        telemetry: Telemetry,
        lease_ttl: float = 30.0,
        history_messages: int = 200,
        max_turn_seconds: float = 300.0,
        max_steps: int | None = None,
    ) -> None:
        self._store = store
        self._log = log
        self._agents = agents
        self._model = model
        self._clock = clock
        self._holder = holder
        self._telemetry = telemetry
        self._lease_ttl = timedelta(seconds=lease_ttl)
        self._history_messages = history_messages
        self._max_turn_seconds = max_turn_seconds
        self._max_steps = max_steps
        self._live: dict[RunId, _LiveRun] = {}
        self._accepting = True
        self._renewal: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def active(self) -> int:
        return len(self._live)

    async def start(self, request: TurnRequest) -> StartedRun:
        """Open a run for ``request`` and start producing its reply."""
        if not self._accepting:
            raise ServerStoppingError()
        session_id = request.session_id
        new_session = session_id is None
        if session_id is None:
            agent = self._agents.get(request.agent)
            session = await self._store.create_session(
                owner=request.owner, agent=agent.name, title=_title(request.message)
            )
            session_id = session.id
        else:  # the session's own agent answers, unless the request names another
            session = await self._store.get_session(session_id, owner=request.owner)
            agent = self._agents.get(request.agent or session.agent)
        user = Message.user(request.message)
        token = ids.new_id()  # ours: the lease can be given back if we cannot tell
        try:
            started = await self._store.begin_turn(  # takes the session's lease, in one step
                session_id,
                NewMessage(user, count_message_tokens(self._model, user)),
                lease=TakeLease(self._holder, self._lease_ttl, token),
                model=self._model.model_id,
            )
        except AgentHostError:  # refused: nothing was written
            raise
        except BaseException:  # cancelled, say: the lease may have been taken
            with contextlib.suppress(AgentHostError):
                await self._store.release_lease(
                    Lease(session_id, self._holder, token, self._clock.now())
                )
            raise
        lease = started.lease
        info = RunInfo(started.run.id, session_id, agent.name, self._model.model_id)
        context.session_id.set(session_id)  # for the request's access-log line
        context.run_id.set(info.run_id)
        self._log.open(info.run_id)
        loop = self._running_loop()
        live = _LiveRun(
            info=info,
            agent=agent,
            user_message=user,
            lease=lease,
            options=TurnOptions(
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                max_steps=min(agent.max_steps, self._max_steps or agent.max_steps),
            ),
            finishers=request.finishers,
            new_session=new_session,
            publisher=RunPublisher(self._log, info.run_id, request_id=request.request_id),
            outcome=loop.create_future(),
        )
        live.publisher.opening(session_id, info.run_id, info.model, info.agent)
        self._live[info.run_id] = live
        # Eager: the model's request goes out now, not a turn of the loop later.
        live.task = start_task(loop, self._execute(live), name=f"run {info.run_id}")
        if self._renewal is None or self._renewal.done():
            self._renewal = loop.create_task(self._keep_leases(), name="lease renewal")
        return StartedRun(info, live.outcome)

    async def check_owner(self, run_id: RunId, owner: OwnerFilter) -> SessionId:
        """The run's session, if ``owner`` may see it; ``RunNotFoundError`` otherwise."""
        live = self._live.get(run_id)
        session_id = (
            live.info.session_id if live else (await self._store.get_run(run_id)).session_id
        )
        try:
            await self._store.get_session(session_id, owner=owner)
        except StoreError as exc:
            raise RunNotFoundError() from exc
        return session_id

    def follow(
        self, run_id: RunId, *, after: int = 0, idle_timeout: float | None = None
    ) -> AsyncIterator[RunEvent | None]:
        return self._log.follow(run_id, after=after, idle_timeout=idle_timeout)

    def outcome(self, run_id: RunId) -> asyncio.Future[RunOutcome]:
        """How a run of this process ends; awaiting it never cancels the run itself."""
        live = self._live.get(run_id)
        if live is None:
            raise RunNotFoundError("This run is not running in this process")
        return asyncio.shield(live.outcome)

    async def available(self, run_id: RunId) -> bool:
        """Whether the run's events can be followed through this process."""
        return await self._log.locate(run_id)

    def knows(self, run_id: RunId) -> bool:
        """Whether this process's event log still has the run's events."""
        return self._log.knows(run_id)

    def is_live(self, run_id: RunId) -> bool:
        return run_id in self._live

    def cancel(self, run_id: RunId, reason: StopReason = "cancelled") -> bool:
        """Stop a run of this process; what it generated is kept. False if it is not here."""
        live = self._live.get(run_id)
        if live is None or live.task is None or live.task.done():
            return False
        live.stop_reason = live.stop_reason or reason
        live.task.cancel()
        return True

    async def recover_crashed_runs(self) -> None:
        """Every lease period: runs whose process died (expired lease) become interrupted."""
        while True:
            try:
                recovered = await self._store.recover_interrupted()
            except AgentHostError as exc:
                logger.warning("could not look for crashed runs: %s", exc.message)
            else:
                if recovered:
                    logger.warning("marked %d crashed run(s) interrupted", recovered)
            await asyncio.sleep(self._lease_ttl.total_seconds())

    async def stop_session(self, session_id: SessionId) -> None:
        """Cancel this process's runs in the session and wait until they are saved."""
        tasks = []
        for run_id, live in list(self._live.items()):
            if live.info.session_id == session_id and self.cancel(run_id) and live.task:
                tasks.append(live.task)
        if tasks:
            await asyncio.wait(tasks)

    async def shutdown(self, grace: float) -> None:
        """Refuse new runs, give running ones ``grace`` seconds, then interrupt the rest."""
        self._accepting = False
        tasks = [live.task for live in self._live.values() if live.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for run_id in list(self._live):
            self.cancel(run_id, "interrupted")
        tasks = [live.task for live in self._live.values() if live.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._renewal is not None:
            self._renewal.cancel()
        with contextlib.suppress(AgentHostError):  # runs that could not save themselves
            await self._store.mark_interrupted(self._holder)

    async def _execute(self, live: _LiveRun) -> None:
        context.session_id.set(live.info.session_id)
        context.run_id.set(live.info.run_id)
        watch = self._telemetry.watch(
            agent=live.info.agent,
            model=live.info.model,
            message=live.user_message.content,
            session_id=live.info.session_id,
            run_id=live.info.run_id,
        )
        progress = TurnProgress()
        status: FinalRunStatus = "completed"
        error: AgentHostError | None = None
        messages: list[Message] = []
        # The turn's time limit: a timer that cancels the task (asyncio.timeout would
        # look the loop up three times, each a getpid on Python 3.11).
        limit = self._running_loop().call_later(self._max_turn_seconds, self._time_out, live)
        try:
            history = await self._history(live)
            stream = stream_turn(
                live.agent, self._model, history, live.user_message, options=live.options
            )
            async for event in stream:
                progress.observe(event)
                watch.observe(event)
                live.publisher.agent_event(event)
                if isinstance(event, TurnCompleted):
                    messages = list(event.result.messages)
        except asyncio.CancelledError:
            if live.stop_reason is None and live.timed_out:
                status, error = "failed", self._turn_timeout()
            else:
                status = live.stop_reason or "interrupted"
                if status == "interrupted":
                    error = ServerStoppingError()
            if live.task is not None:  # the task running this: its cancel is handled here
                live.task.uncancel()
        except AgentHostError as exc:
            status, error = "failed", exc
        except Exception:
            logger.exception("run %s failed", live.info.run_id)
            status, error = "failed", AgentHostError("The reply failed because of a server error")
        finally:
            limit.cancel()
        if status != "completed":
            messages = progress.messages()
        await self._finish(live, status, error, messages, progress)
        outcome = live.outcome.result()
        watch.finish(outcome.status, outcome.usage, error=outcome.error)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop runs are started in, looked up once (a getpid each time on Python 3.11)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _time_out(self, live: _LiveRun) -> None:
        if live.task is not None and not live.task.done():
            live.timed_out = True
            live.task.cancel()

    def _turn_timeout(self) -> ModelTimeoutError:
        return ModelTimeoutError(
            f"The reply took longer than {self._max_turn_seconds:g} s, the limit for one "
            "turn; what was written so far is kept",
            phase="turn",
        )

    async def _finish(
        self,
        live: _LiveRun,
        status: FinalRunStatus,
        error: AgentHostError | None,
        messages: list[Message],
        progress: TurnProgress,
    ) -> None:
        session_tokens = 0
        released = False
        try:
            new = [
                NewMessage(message, count_message_tokens(self._model, message))
                for message in live.publisher.normalised(messages)
            ]
            completed = await self._store.complete_turn(
                live.info.run_id,
                new,
                usage=progress.usage,
                status=status,
                error=error.message if error else None,
                release=live.lease,  # in the same step: one store operation fewer
            )
            released = True
            session_tokens = completed.session.total_tokens
        except AgentHostError as exc:
            logger.error("run %s: could not save the reply: %s", live.info.run_id, exc.message)
            status, error = "failed", exc
        except Exception:  # a store's bug must not leave the run's followers waiting
            logger.exception("run %s: could not save the reply", live.info.run_id)
            status, error = "failed", AgentHostError("The reply could not be saved")
        finally:
            if not released:
                with contextlib.suppress(AgentHostError):
                    await self._store.release_lease(live.lease)
            self._live.pop(live.info.run_id, None)
        for finisher in live.finishers:
            try:
                await finisher(progress.usage)
            except AgentHostError as exc:
                logger.warning("run %s: settling limits failed: %s", live.info.run_id, exc.message)
        live.publisher.closing(status, error, session_tokens)
        live.outcome.set_result(
            RunOutcome(
                info=live.info,
                status=status,
                text=live.publisher.text,
                usage=progress.usage,
                tool_outcomes=tuple(live.publisher.tool_outcomes),
                session_tokens=session_tokens,
                error=error,
                citations=tuple(live.publisher.citations),
            )
        )

    async def _history(self, live: _LiveRun) -> list[Message]:
        if live.new_session:  # nothing was said before this message: no store round trip
            return []
        budget = self._model.context_window
        window = await self._store.read_window(
            live.info.session_id, budget_tokens=budget, max_messages=self._history_messages + 1
        )
        return [m.message for m in window if m.run_id != live.info.run_id]

    async def _keep_leases(self) -> None:
        """Renew the lease of every running run every third of the lease time, while any run.

        One task for all of them, not one per run: a run's lease is renewed at
        most a third of the lease time after it was taken or last renewed.
        """
        interval = self._lease_ttl.total_seconds() / 3
        while self._live:
            await asyncio.sleep(interval)
            running = [live for live in self._live.values() if not live.lease_lost]
            await asyncio.gather(*(self._renew(live) for live in running))

    async def _renew(self, live: _LiveRun) -> None:
        try:
            lease = await self._store.renew_lease(live.lease, self._lease_ttl)
        except SessionBusyError:
            if live.info.run_id in self._live:  # not just released by the run's end
                live.lease_lost = True
                logger.error("run %s lost its session's lease", live.info.run_id)
        except AgentHostError as exc:
            logger.warning("run %s: lease renewal failed: %s", live.info.run_id, exc.message)
        else:
            if live.info.run_id in self._live:
                live.lease = lease


def _title(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"
