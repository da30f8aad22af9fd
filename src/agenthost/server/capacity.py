"""Taking a caller's capacity for one reply: a slot of their concurrent streams and an
estimate of the tokens it will spend, both before the model is called.

What this returns are the finishers the run calls with its real usage when it
ends: the token reservation is settled and the stream slot given back.
"""

from __future__ import annotations

from fastapi import Request

from agenthost.llm.base import count_message_tokens
from agenthost.messages import Message, Usage
from agenthost.runs.turn import Finisher
from agenthost.server.auth import current_principal
from agenthost.services import ServerServices

DEFAULT_REPLY_ESTIMATE = 256


async def reserve_capacity(
    request: Request, services: ServerServices, message: str, max_tokens: int | None
) -> tuple[Finisher, ...]:
    principal = current_principal(request)
    if not principal.limits.tpm and not principal.limits.max_streams:
        return ()  # nothing to take, nothing to settle
    estimate = count_message_tokens(services.core.model, Message.user(message)) + (
        max_tokens or DEFAULT_REPLY_ESTIMATE
    )
    slot = await services.limiter.open_stream(principal, request_id(request))
    try:
        reservation = await services.limiter.reserve_tokens(principal, estimate)
    except BaseException:
        await slot.release()
        raise

    async def settle(usage: Usage) -> None:
        try:
            await reservation.settle(usage.total_tokens)
        finally:
            await slot.release()

    return (settle,)


def request_id(request: Request) -> str:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else str(id(request))
