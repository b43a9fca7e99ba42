"""Shared fixtures: free loopback ports and helpers to run processes under test."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # examples/ is importable in tests
    sys.path.insert(0, str(ROOT))


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


# CI runs the property tests with fixed seeds so that a landing never depends on a lucky draw; developers get fresh
# random examples on every run.
if os.environ.get("CI") == "true":
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None)
    settings.load_profile("ci")
