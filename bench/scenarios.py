"""The scenarios ``make bench`` runs and the servers it runs them against.

(a) and (b) are the everyday case: a model that streams 50 tokens 20 ms apart
after 50 ms. (c) takes the upstream's time out of the picture (the whole reply
at once), so the server's own cost sets the pace. (d) is the same without
streaming to the client. The many-streams check holds 2,000 streams open on
one worker at once, each a slow model's (20 tokens a second apart), so that what
is tested is holding that many streams, not the speed of one core.

Two more scenarios, not run unless asked for (``--scenarios t,r``), split a
server's cost in two: (t) replies of 500 tokens, so that per-request work is
spread thin and what is left is the cost of a token; (r) replies of one token,
so that what is measured is the cost of a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.profiles import UpstreamProfile

TARGETS = ("agenthost", "aiohttp-relay", "httpx-relay")
BASELINE = "aiohttp-relay"
TOKENS = 50
PACED = UpstreamProfile(ttft_ms=50, gap_ms=20, tokens=TOKENS)
INSTANT = UpstreamProfile(ttft_ms=0, gap_ms=0, tokens=TOKENS)
LONG = UpstreamProfile(ttft_ms=50, gap_ms=20, tokens=500)
ONE_TOKEN = UpstreamProfile(ttft_ms=0, gap_ms=0, tokens=1)


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    clients: int
    profile: UpstreamProfile
    streaming: bool = True
    once: bool = False
    ramp: float = 1.0

    @property
    def path(self) -> str:
        return "/chat/stream" if self.streaming else "/chat"


SCENARIOS = (
    Scenario("a", "32 clients, 20 ms between tokens", 32, PACED, ramp=PACED.reply_seconds),
    Scenario("b", "256 clients, 20 ms between tokens", 256, PACED, ramp=PACED.reply_seconds),
    Scenario("c", "64 clients, instant upstream", 64, INSTANT, ramp=0.5),
    Scenario("d", "64 clients, not streamed, instant upstream", 64, INSTANT, streaming=False),
)
SPLIT_SCENARIOS = (
    Scenario("t", "per token: 256 clients, 500 tokens 20 ms apart", 256, LONG, ramp=2.0),
    Scenario("r", "per request: 64 clients, one instant token each", 64, ONE_TOKEN, ramp=0.5),
)
ALL_SCENARIOS = SCENARIOS + SPLIT_SCENARIOS
MANY_STREAMS = Scenario(
    "many",
    "2,000 concurrent streams, one worker",
    2000,
    UpstreamProfile(ttft_ms=50, gap_ms=1000, tokens=20),
    once=True,
    ramp=2.0,
)
