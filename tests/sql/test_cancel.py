"""A statement cancelled half way on a real MariaDB (a task cancelled while a service stops, a call that timed out):
the connection it ran on is never used again (aiomysql would read the rest of the old reply as the next one, or wait
forever), the pool keeps answering, the cancelled transaction leaves nothing, and closing the database returns
instead of waiting for a connection that never comes back."""

from __future__ import annotations

import asyncio
import uuid

from k8stars.sql import Database, Schema, Step, database
from k8stars.testing.mariadb import MariaDB

ITEMS = "CREATE TABLE IF NOT EXISTS t_items (id int NOT NULL PRIMARY KEY)"
SCHEMA = Schema("items", [Step(sqlite=[ITEMS], mysql=[ITEMS])])
BOUND = 10.0  # seconds any step may take: a regression fails here instead of hanging the run


async def cancelled_halfway(work: asyncio.Future[object] | asyncio.Task[object]) -> None:
    await asyncio.sleep(0.5)  # the statement is on the server now
    work.cancel()
    done, _ = await asyncio.wait({work}, timeout=BOUND)
    assert done and work.cancelled()


async def answers(db: Database, times: int) -> list[int]:
    """``SELECT n`` on as many connections as the pool may hold and more: a poisoned one would be among them."""
    got = []
    for n in range(times):
        (row,) = await asyncio.wait_for(db.fetch(f"SELECT {n}"), BOUND)
        got.append(int(row[0]))
    return got


async def test_a_cancelled_statement_poisons_nothing(mariadb: MariaDB) -> None:
    db = database("mysql", SCHEMA, dsn=mariadb.dsn(f"db_tars_{uuid.uuid4().hex[:12]}"), pool_size=2)
    await db.open()
    try:
        await cancelled_halfway(asyncio.ensure_future(db.fetch("SELECT SLEEP(5)")))
        assert await answers(db, 5) == [0, 1, 2, 3, 4]

        async def write_then_wait() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t_items (id) VALUES (1)")
                await tx.fetch("SELECT SLEEP(5)")

        await cancelled_halfway(asyncio.ensure_future(write_then_wait()))
        ((count,),) = await asyncio.wait_for(db.fetch("SELECT COUNT(*) FROM t_items"), BOUND)
        assert count == 0
        assert await answers(db, 5) == [0, 1, 2, 3, 4]
        # a statement still running when the database closes: the close is bounded, the statement ends with it
        running = asyncio.ensure_future(db.fetch("SELECT SLEEP(30)"))
        await asyncio.sleep(0.5)
    finally:
        await asyncio.wait_for(db.close(), BOUND)
    done, _ = await asyncio.wait({running}, timeout=BOUND)
    assert done
