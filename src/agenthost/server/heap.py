"""Garbage-collector settings for a process that only serves agenthost.

CPython's cyclic collector runs a young-generation pass every 700 allocations
of container objects, and now and then an old-generation pass over every
object the process holds. A request allocates thousands of such objects, and
the process holds hundreds of thousands from start-up (FastAPI's routes,
pydantic's validators, the knowledge base): in a profile of bench
scenario (d) the collector took 16% of the server's CPU. Once the app has
started, ``settle_heap`` moves everything start-up made into the permanent
generation (``gc.freeze``: no pass looks at it again) and lets the young
generation grow to ``YOUNG_THRESHOLD`` before a pass. Objects that die by
reference counting, nearly all of a request's, never wait for the collector,
so memory stays where it was.

Under load, what a young pass costs is set by what is in flight, not by the
threshold: the coroutines, frames and buffers of every open stream (about
20,000 objects at 256 streams) are young when a pass comes, and walking them
and everything they point to took 40-60 ms, a pause of every stream. The
count that starts a pass grows only with what the process keeps (finished
runs' events, sessions in a memory store), so a higher threshold makes these
pauses rarer without making them longer: at 20,000 there was one every two or
three seconds in bench scenario (b), at 100,000 one in the whole run.

Only ``agenthost serve`` (the app factory uvicorn's workers call) does this:
an app embedded in someone else's process leaves their collector alone.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000


def settle_heap() -> None:
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
