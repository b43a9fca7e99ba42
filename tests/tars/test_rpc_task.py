"""Servant handlers run inside an asyncio Task of their own: asyncio.timeout, TaskGroup, current_task and
contextvars work from a handler's first statement, whether the call finishes at once or has to wait."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import pytest

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.rpc import Communicator, Servant, ServantProxy, Server
from k8stars.tars.rpc.current import current
from k8stars.testing.peers import GO_SRC

ECHO = load_runtime([GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
NAME = "Test.TaskServer.EchoObj"
seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")
callbacks: list[asyncio.Future[bool]] = []


class TaskEcho(Servant):
    """``echo(what)`` does what its argument names and answers how it went."""

    __tars_interface__ = ECHO

    async def echo(self, s: str) -> tuple[int, str]:
        if s == "timeout":  # the first statement: this failed with -99 when handlers ran outside a Task
            try:
                async with asyncio.timeout(0.05):
                    await asyncio.sleep(30)
            except TimeoutError:
                return 1, "timed out"
            return 0, "not timed out"
        if s == "in-time":
            async with asyncio.timeout(30):
                await asyncio.sleep(0.01)
            return 0, "in time"
        if s == "sync":  # finishes in its first step: never waits on the loop
            async with asyncio.timeout(30):
                return 0, "sync"
        if s == "same-task":
            task = asyncio.current_task()
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            return 0, str(task is not None and task is asyncio.current_task())
        if s.startswith("var:"):  # a contextvar set by one call is not seen by the next
            before = seen.get()
            seen.set(s)
            await asyncio.sleep(0.01)
            return 0, f"{before}|{seen.get()}|{current().func}"
        if s == "done-callback":  # finishes in its first step; its own task's done callbacks still run
            done = asyncio.get_running_loop().create_future()
            task = asyncio.current_task()
            assert task is not None
            task.add_done_callback(lambda t: done.set_result(t.done()))
            callbacks.append(done)
            return 0, "added"
        if s == "group":
            async with asyncio.TaskGroup() as tg:
                parts = [tg.create_task(asyncio.sleep(0.01, result=str(i))) for i in range(3)]
            return 0, "".join(p.result() for p in parts)
        return 0, s


@pytest.fixture
async def proxy() -> AsyncIterator[ServantProxy]:
    server = Server(grace_seconds=2)
    adapter = server.add_servant(TaskEcho(), NAME, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await server.start()
    try:
        async with Communicator() as comm:
            yield comm.string_to_proxy(ServantProxy, f"{NAME}@{adapter.endpoint}", interface=ECHO)
    finally:
        await server.stop(0)


async def echo(proxy: ServantProxy, what: str) -> tuple[int, str]:
    ret, out = await proxy.tars_invoke("echo", (what,))
    return int(ret), str(out)


async def test_asyncio_timeout_as_a_handlers_first_statement(proxy: ServantProxy) -> None:
    assert await echo(proxy, "timeout") == (1, "timed out")
    assert await echo(proxy, "in-time") == (0, "in time")
    assert await echo(proxy, "sync") == (0, "sync")


async def test_one_task_per_call_from_start_to_end(proxy: ServantProxy) -> None:
    assert await echo(proxy, "same-task") == (0, "True")
    assert await echo(proxy, "group") == (0, "012")


async def test_done_callbacks_of_a_call_that_finished_at_once(proxy: ServantProxy) -> None:
    callbacks.clear()
    assert await echo(proxy, "done-callback") == (0, "added")
    assert await asyncio.wait_for(callbacks[0], 5) is True


async def test_calls_do_not_share_context(proxy: ServantProxy) -> None:
    answers = await asyncio.gather(*(echo(proxy, f"var:{i}") for i in range(20)))
    assert answers == [(0, f"|var:{i}|echo") for i in range(20)]


async def test_many_waiting_and_finishing_calls_together(proxy: ServantProxy) -> None:
    kinds = ["timeout", "in-time", "sync", "same-task", "plain"] * 20
    answers = await asyncio.gather(*(echo(proxy, k) for k in kinds))
    expected = {"timeout": (1, "timed out"), "in-time": (0, "in time"), "sync": (0, "sync"),
                "same-task": (0, "True"), "plain": (0, "plain")}  # fmt: skip
    assert answers == [expected[k] for k in kinds]
