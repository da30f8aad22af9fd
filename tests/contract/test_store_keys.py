"""The store contract, keys: idempotency records and API keys."""

from __future__ import annotations

import hashlib

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import IdempotencyConflictError, InvalidIdError
from agenthost.stores import ApiKeyId, Store, new_run_id

from .test_store_sessions import ALICE, BOB


async def test_an_idempotency_key_names_one_run(store: Store, clock: ManualClock) -> None:
    run_id = new_run_id()
    assert await store.get_idempotency(ALICE, "key-1", fingerprint="body-a") is None
    record = await store.put_idempotency(ALICE, "key-1", "body-a", run_id)
    assert (record.owner, record.key, record.run_id) == (ALICE, "key-1", run_id)
    assert record.created_at == clock.now()
    assert await store.get_idempotency(ALICE, "key-1", fingerprint="body-a") == record
    # a retry that races the first request gets the first run, not its own
    again = await store.put_idempotency(ALICE, "key-1", "body-a", new_run_id())
    assert again == record


async def test_the_same_key_with_another_body_is_a_conflict(store: Store) -> None:
    await store.put_idempotency(None, "key-1", "body-a", new_run_id())
    with pytest.raises(IdempotencyConflictError):
        await store.get_idempotency(None, "key-1", fingerprint="body-b")
    with pytest.raises(IdempotencyConflictError):
        await store.put_idempotency(None, "key-1", "body-b", new_run_id())


async def test_idempotency_keys_are_per_owner(store: Store) -> None:
    alices = await store.put_idempotency(ALICE, "shared", "a", new_run_id())
    bobs = await store.put_idempotency(BOB, "shared", "b", new_run_id())
    anonymous = await store.put_idempotency(None, "shared", "c", new_run_id())
    assert len({alices.run_id, bobs.run_id, anonymous.run_id}) == 3
    assert (await store.get_idempotency(BOB, "shared", fingerprint="b")) == bobs


async def test_idempotency_records_expire(store: Store, clock: ManualClock) -> None:
    first = await store.put_idempotency(ALICE, "key-1", "body-a", new_run_id())
    clock.advance(24 * 3600)
    assert await store.get_idempotency(ALICE, "key-1", fingerprint="body-a") is None
    second = await store.put_idempotency(ALICE, "key-1", "body-b", new_run_id())
    assert second.run_id != first.run_id


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
async def test_bad_idempotency_keys_are_rejected(store: Store, key: str) -> None:
    with pytest.raises(InvalidIdError):
        await store.put_idempotency(None, key, "f", new_run_id())


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def test_api_keys_are_stored_hashed_and_found_by_hash(
    store: Store, clock: ManualClock
) -> None:
    created = await store.create_api_key(
        name="ci", prefix="ah_12345", key_hash=_hash("secret-1"), rpm=60, max_streams=2, admin=True
    )
    assert created.created_at == clock.now()
    assert (created.last_used_at, created.revoked_at) == (None, None)
    assert await store.get_api_key_by_hash(_hash("secret-1")) == created
    assert await store.get_api_key_by_hash(_hash("other")) is None
    with pytest.raises(ValueError, match="hash"):
        await store.create_api_key(name="dup", prefix="ah_1", key_hash=_hash("secret-1"))


async def test_api_keys_list_touch_and_revoke(store: Store, clock: ManualClock) -> None:
    first = await store.create_api_key(name="a", prefix="ah_a", key_hash=_hash("a"))
    clock.advance(1)
    second = await store.create_api_key(name="b", prefix="ah_b", key_hash=_hash("b"))
    assert [k.id for k in await store.list_api_keys()] == [first.id, second.id]
    clock.advance(1)
    await store.touch_api_key(first.id)
    touched = await store.get_api_key_by_hash(_hash("a"))
    assert touched is not None
    assert touched.last_used_at == clock.now()
    revoked = await store.revoke_api_key(second.id)
    assert revoked is not None
    assert revoked.revoked_at == clock.now()
    clock.advance(1)
    assert (await store.revoke_api_key(second.id)) == revoked  # the first revocation stands
    assert await store.revoke_api_key(ApiKeyId("7d1e0c2b-8a4f-4b6e-9c3d-5e7f9a1b3c5d")) is None
    await store.touch_api_key(ApiKeyId("7d1e0c2b-8a4f-4b6e-9c3d-5e7f9a1b3c5d"))
    assert len(await store.list_api_keys()) == 2
