"""Helpers shared by the operator tests (a module of its own: conftest modules are not importable by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from k8stars.kube.client import Resource
from k8stars.kube.resources import TARS_KINDS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "k8s"


def resource_of(kind: str) -> Resource:
    return next(r for r in TARS_KINDS if r.kind == kind)


def load_examples(name: str) -> list[dict[str, Any]]:
    with open(EXAMPLES / name) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


async def until(probe: Any, *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `probe` (a coroutine function) until it returns something truthy; bounded."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except AssertionError as exc:  # probes may assert to explain what is still missing
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
