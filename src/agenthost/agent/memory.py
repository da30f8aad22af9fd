"""The context window: which messages of a conversation one model call gets.

A call gets the system prompt, the current user message (always), and then the
newest messages that still fit the budget, taken newest first and stopping at
the first that does not fit, so the window is always a contiguous tail of the
conversation. Messages are grouped into units that are kept or dropped whole:
an assistant message that calls tools travels with the results of those calls,
so a tool result is never sent without its call (and a call whose result was
never stored is dropped from the message rather than sent unanswered).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from agenthost.errors import ContextWindowExceededError
from agenthost.messages import Message

Counter = Callable[[Message], int]


def select_window(
    system: Message | None,
    history: Sequence[Message],
    turn: Sequence[Message],
    *,
    budget: int,
    count: Counter,
    context: Sequence[Message] = (),
) -> list[Message]:
    """Messages for one model call, within ``budget`` tokens.

    ``history`` is what came before this turn; ``turn`` starts with the current
    user message, followed by the steps (tool calls and results) taken so far.
    ``context`` (an agent's retrieved sources) is always sent, right before the
    user message.
    """
    pinned = [*context, *turn[:1]]
    fixed = ([system] if system else []) + pinned
    cost = sum(count(m) for m in fixed)
    if cost > budget:
        raise ContextWindowExceededError(
            f"The message is too long for this model: it needs {cost} tokens with the "
            f"instructions, and the model's budget for a prompt is {budget}. Shorten it."
        )
    kept_turn, cost, complete = _take_newest(_units(turn[1:]), cost, budget, count)
    kept_history: list[Message] = []
    if complete:
        kept_history, _, _ = _take_newest(_units(history), cost, budget, count)
    return ([system] if system else []) + kept_history + pinned + kept_turn


def _take_newest(
    units: list[list[Message]], cost: int, budget: int, count: Counter
) -> tuple[list[Message], int, bool]:
    taken: list[list[Message]] = []
    for unit in reversed(units):
        unit_cost = sum(count(m) for m in unit)
        if cost + unit_cost > budget:
            return _flatten(reversed(taken)), cost, False
        taken.append(unit)
        cost += unit_cost
    return _flatten(reversed(taken)), cost, True


def _units(messages: Sequence[Message]) -> list[list[Message]]:
    units: list[list[Message]] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        index += 1
        if message.role == "tool":
            continue  # an orphan result: its call is not in this window
        if message.role != "assistant" or not message.tool_calls:
            units.append([message])
            continue
        wanted = {call.id for call in message.tool_calls}
        results: list[Message] = []
        while index < len(messages) and messages[index].role == "tool":
            result = messages[index]
            if result.tool_call_id in wanted:
                results.append(result)
            index += 1
        answered = {r.tool_call_id for r in results}
        calls = tuple(call for call in message.tool_calls if call.id in answered)
        units.append([replace(message, tool_calls=calls), *results])
    return units


def _flatten(units: Iterable[list[Message]]) -> list[Message]:
    return [message for unit in units for message in unit]
