"""A child process for the multi-process store tests; run as a script, never imported by pytest.

store_worker.py append URL SESSION_ID TURNS NAME  turns in a shared session (waiting for
                                                  its lease) and in a session of its own
store_worker.py hold URL SESSION_ID               begin a turn, print "ready", wait for SIGKILL
store_worker.py churn URL SESSION_ID              take turns until killed, printing each
store_worker.py upgrade URL                       apply the schema migrations
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from agenthost.errors import SessionBusyError, StoreUnavailableError
from agenthost.messages import Message, Usage
from agenthost.stores import NewMessage, SessionId, Store, open_store, upgrade

LEASE = timedelta(seconds=5)


async def take_turn(store: Store, session_id: SessionId, text: str, holder: str) -> None:
    while True:
        try:
            lease = await store.acquire_lease(session_id, holder, LEASE)
            break
        except (SessionBusyError, StoreUnavailableError):
            await asyncio.sleep(0.005)
    try:
        started = await store.begin_turn(
            session_id, NewMessage(Message.user(text), 2), lease=lease, model="worker"
        )
        reply = NewMessage(Message.assistant(f"{text} reply"), 3)
        await store.complete_turn(started.run.id, [reply], usage=Usage(2, 3))
    finally:
        await store.release_lease(lease)


async def append(url: str, session_id: SessionId, turns: int, name: str) -> None:
    async with open_store(url) as store:
        own = await store.create_session(owner=None, agent=name)
        print(own.id, flush=True)
        for index in range(turns):
            await take_turn(store, session_id, f"{name}-{index}", name)
            await take_turn(store, own.id, f"{name}-own-{index}", name)


async def hold(url: str, session_id: SessionId) -> None:
    async with open_store(url) as store:
        lease = await store.acquire_lease(session_id, "doomed", LEASE)
        started = await store.begin_turn(
            session_id, NewMessage(Message.user("are you there?"), 4), lease=lease, model="worker"
        )
        print("ready", started.run.id, flush=True)
        await asyncio.sleep(3600)


async def churn(url: str, session_id: SessionId) -> None:
    async with open_store(url) as store:
        for index in range(1_000_000):
            await take_turn(store, session_id, f"churn-{index}", "churner")
            print("turn", index, flush=True)


def main(argv: list[str]) -> None:
    match argv:
        case ["append", url, session_id, turns, name]:
            asyncio.run(append(url, SessionId(session_id), int(turns), name))
        case ["hold", url, session_id]:
            asyncio.run(hold(url, SessionId(session_id)))
        case ["churn", url, session_id]:
            asyncio.run(churn(url, SessionId(session_id)))
        case ["upgrade", url]:
            print(asyncio.run(upgrade(url)).applied, flush=True)
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
