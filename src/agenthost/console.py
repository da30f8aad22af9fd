"""The terminal chat: an interactive conversation with an agent, or a scripted one.

On a terminal it prompts, streams each reply as it is generated, shows tool calls
and their results, and keeps the conversation in memory; Ctrl-C stops a reply
(what was written is kept), Ctrl-D or ``/exit`` leaves, ``/reset`` starts over.
With piped input it reads one message per line, prints each reply followed by a
newline, and exits at the end of input, so it can be scripted.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from agenthost.agent.definition import Agent
from agenthost.agent.loop import (
    AgentEvent,
    MessageCompleted,
    ToolCallFinished,
    ToolCallStarted,
    TurnCompleted,
    TurnOptions,
    stream_turn,
)
from agenthost.agent.progress import TurnProgress
from agenthost.errors import AgentHostError
from agenthost.llm.base import ChatModel, TextDelta, UsageReported
from agenthost.messages import Message, Usage
from agenthost.services import Services, open_services
from agenthost.settings import Settings


class Conversation:
    """One agent, one model, and the history so far."""

    def __init__(self, agent: Agent, model: ChatModel, *, options: TurnOptions | None = None):
        self.agent = agent
        self.model = model
        self.options = options
        self.history: list[Message] = []

    async def send(self, text: str, on_event: Callable[[AgentEvent], None]) -> None:
        """Run one turn; on cancellation what was written so far is kept in the history."""
        user = Message.user(text)
        progress = TurnProgress()
        try:
            stream = stream_turn(self.agent, self.model, self.history, user, options=self.options)
            async for event in stream:
                progress.observe(event)
                on_event(event)
        finally:
            self.history += [user, *progress.messages()]

    def reset(self) -> None:
        self.history.clear()


def run_chat(
    settings: Settings,
    *,
    model_id: str | None,
    agent: str | None,
    temperature: float | None = None,
) -> int:
    """Run the terminal chat until the input ends; returns the exit code."""
    interactive = sys.stdin.isatty()
    console = Console(stderr=True, highlight=False)
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        try:
            services = runner.run(
                stack.enter_async_context(open_services(settings, model_id=model_id, agent=agent))
            )
            if interactive:
                runner.run(services.model.start())
            conversation = Conversation(
                services.agents.get(),
                services.model,
                options=TurnOptions(temperature=temperature),
            )
            if interactive:
                return _interactive(runner, conversation, services, console)
            return _scripted(runner, conversation, console)
        except AgentHostError as exc:
            console.print(f"[red]error:[/red] {escape(exc.message)}")
            return 1
        finally:
            runner.run(stack.aclose())


def _interactive(
    runner: asyncio.Runner, conversation: Conversation, services: Services, console: Console
) -> int:
    out = Console(highlight=False)
    agent, model = conversation.agent, conversation.model
    tools = ", ".join(agent.toolset.names) if model.supports_tools and agent.tools else "none"
    console.print(
        f"[bold]agenthost chat[/bold] agent [cyan]{agent.name}[/cyan] on model "
        f"[cyan]{escape(model.model_id)}[/cyan] (tools: {tools}). "
        "Ctrl-C stops a reply, /reset starts over, Ctrl-D or /exit leaves."
    )
    while True:
        try:
            text = out.input("[bold green]you>[/bold green] ").strip()
        except (EOFError, KeyboardInterrupt):
            out.print()
            return 0
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/reset":
            conversation.reset()
            console.print("[dim]conversation cleared[/dim]")
            continue
        out.print("[bold blue]agent>[/bold blue] ", end="")
        printer = _EventPrinter(out)
        try:
            runner.run(conversation.send(text, printer))
        except KeyboardInterrupt:
            out.print("\n[dim][stopped][/dim]")
        except AgentHostError as exc:
            out.print(f"\n[red]error:[/red] {escape(exc.message)}")
        else:
            out.print(f"\n[dim]{printer.usage_line()}[/dim]")


def _scripted(runner: asyncio.Runner, conversation: Conversation, console: Console) -> int:
    status = 0
    for line in _lines(sys.stdin):
        try:
            runner.run(conversation.send(line, _PlainPrinter(sys.stdout)))
        except AgentHostError as exc:
            console.print(f"[red]error:[/red] {escape(exc.message)}")
            status = 1
        sys.stdout.write("\n")
        sys.stdout.flush()
    return status


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:  # lazily: a reply is printed before the next line is read
        if line.strip():
            yield line.strip()


class _PlainPrinter:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, TextDelta):
            self._out.write(event.text)
            self._out.flush()


class _EventPrinter:
    def __init__(self, out: Console) -> None:
        self._out = out
        self.usage = Usage()

    def __call__(self, event: AgentEvent) -> None:
        match event:
            case TextDelta(text=text):
                self._out.print(text, end="", markup=False, highlight=False)
            case ToolCallStarted(call=call):
                arguments = escape(call.arguments)
                self._out.print(f"\n[yellow]→ {escape(call.name)}[/yellow] {arguments}")
            case ToolCallFinished(outcome=outcome):
                colour = "red" if outcome.is_error else "yellow"
                self._out.print(f"[{colour}]← {escape(_short(outcome.content))}[/{colour}]")
            case UsageReported(usage=usage):
                self.usage += usage
            case MessageCompleted() | TurnCompleted():
                pass

    def usage_line(self) -> str:
        return f"[{self.usage.prompt_tokens} prompt + {self.usage.completion_tokens} reply tokens]"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
