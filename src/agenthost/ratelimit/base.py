"""The ``RateLimiter`` seam and what it answers with.

Three limits per caller: requests per minute, model tokens per minute (a
reservation is taken before the model is called, from an estimate, and settled
with the real usage after), and concurrent streams (replies running at once).
A limit of ``None`` or 0 is no limit. Being over a limit raises
``RateLimitedError`` carrying ``Retry-After`` and the ``RateLimit-*`` headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agenthost.auth.keys import Principal


@dataclass(frozen=True, slots=True)
class Quota:
    """Where a caller stands on a limit: for the response headers."""

    limit: int
    remaining: int
    reset_at: float  # Unix time when the window has room again

    def headers(self, now: float) -> dict[str, str]:
        reset_in = max(0, round(self.reset_at - now))
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(int(self.reset_at)),
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(reset_in),
        }


class Reservation(Protocol):
    async def settle(self, actual_tokens: int) -> None:
        """Charge the difference between the real usage and the estimate."""
        ...


class StreamSlot(Protocol):
    async def release(self) -> None: ...


class RateLimiter(Protocol):
    async def hit_request(self, principal: Principal) -> Quota | None:
        """Count one request; ``RateLimitedError`` if over requests per minute."""
        ...

    async def reserve_tokens(self, principal: Principal, estimate: int) -> Reservation:
        """Take ``estimate`` tokens of the minute's budget, or raise ``RateLimitedError``."""
        ...

    async def open_stream(self, principal: Principal, run_id: str) -> StreamSlot:
        """Take one of the caller's concurrent streams, or raise ``RateLimitedError``."""
        ...

    async def aclose(self) -> None: ...
