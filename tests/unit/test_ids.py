"""Ids: random version-4 UUIDs, unique across threads and forked processes."""

from __future__ import annotations

import os
import threading
import uuid

from agenthost.stores.ids import new_hex_id, new_id


def test_ids_are_canonical_random_uuids_and_never_repeat() -> None:
    ids = [new_id() for _ in range(5_000)]  # several refills of the pool
    assert len(set(ids)) == len(ids)
    for made in ids[:300]:
        parsed = uuid.UUID(made)
        assert str(parsed) == made
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_hex_ids_are_random_uuids_as_32_hex_digits() -> None:
    ids = [new_hex_id() for _ in range(1_000)]
    assert len(set(ids)) == len(ids)
    for made in ids[:300]:
        parsed = uuid.UUID(hex=made)
        assert parsed.hex == made
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_threads_never_get_the_same_id() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for into in made for i in into]
    assert len(set(every)) == len(every) == 8_000


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the pool holds bytes both processes would otherwise share
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(writing, " ".join(new_id() for _ in range(20)).encode())
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        theirs = set(pipe.read().decode().split())
    os.waitpid(child, 0)
    ours = {new_id() for _ in range(20)}
    assert len(theirs) == 20
    assert not ours & theirs
