"""A store that cannot answer: 503 with Retry-After, and recovery once it is back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .conftest import running_app


async def test_a_locked_database_is_503_and_the_server_recovers(tmp_path: Path) -> None:
    path = tmp_path / "agenthost.db"
    async with running_app(database_url=f"sqlite:///{path}", database_timeout=0.2) as (_, client):
        assert (await client.post("/chat", json={"message": "before"})).status_code == 200
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            refused = await client.post("/chat", json={"message": "during"})
            created = await client.post("/sessions")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        after = await client.post("/chat", json={"message": "after"})
        listed = (await client.get("/sessions")).json()["sessions"]
    for response in (refused, created):
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        body = response.json()
        assert "locked" in body["error"]
        assert str(path) not in body["error"]
    assert after.status_code == 200
    assert len(listed) == 2
