"""``UpstreamProfile``: what the mock model sends, shared by the upstream and the load generator.

The profile travels in the upstream's URL path (``/s/<ttft_ms>/<gap_ms>/<tokens>/v1``)
so that every server under test, agenthost included, is pointed at it by its
ordinary base-URL setting, and the mock itself stays stateless.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UpstreamProfile:
    """``tokens`` content chunks: the first after ``ttft_ms``, the rest ``gap_ms`` apart."""

    ttft_ms: int
    gap_ms: int
    tokens: int

    @property
    def base_path(self) -> str:
        return f"/s/{self.ttft_ms}/{self.gap_ms}/{self.tokens}/v1"

    @property
    def reply_seconds(self) -> float:
        """How long the upstream takes to send a whole reply (an ideal server adds nothing)."""
        return (self.ttft_ms + (self.tokens - 1) * self.gap_ms) / 1000

    @property
    def instant(self) -> bool:
        return self.ttft_ms == 0 and self.gap_ms == 0


def token_texts(count: int) -> list[str]:
    """The reply's tokens, in order: a word with its leading space, like a real tokenizer's."""
    return [f" w{i}" if i else "Hello" for i in range(count)]


def reply_text(count: int) -> str:
    return "".join(token_texts(count))


def parse_base_path(path: str) -> tuple[UpstreamProfile, str] | None:
    """``/s/50/20/50/v1/chat/completions`` -> (profile, ``/chat/completions``)."""
    parts = path.split("/", 6)
    if len(parts) < 7 or parts[1] != "s" or parts[5] != "v1":
        return None
    try:
        profile = UpstreamProfile(int(parts[2]), int(parts[3]), int(parts[4]))
    except ValueError:
        return None
    if profile.tokens < 1 or profile.ttft_ms < 0 or profile.gap_ms < 0:
        return None
    return profile, "/" + parts[6]
