"""bench/codec's command line: rows per interpreter (``--python``), both clocks, in one run (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from k8stars.tars.codec import available_backends

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench.codec", "--seconds", "0.02", "--no-peers", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)


def test_another_python_gets_its_own_rows() -> None:
    out = json.loads(run_bench("--json", "--python", sys.executable).stdout)
    version = ".".join(map(str, sys.version_info[:3]))
    rows = [label for label in out if label.startswith("k8stars")]
    mine = [label for label in rows if label.endswith(f"({version})")]
    theirs = [label for label in rows if label.endswith(f"({version}, {sys.executable})")]
    assert len(mine) == len(theirs) >= 2  # this interpreter's rows and the subprocess's, each labelled with its own
    for label in mine + theirs:
        if out[label] is None:  # the C rows under K8STARS_PURE_PYTHON=1 (or without a compiler)
            assert label.startswith("k8stars C") and "c" not in available_backends()
            continue
        for workload in ("request_packet", "endpoint_list_100"):
            r = out[label][workload]
            assert r["encode_per_cpu_s"] > 0 and r["decode_per_s"] > 0
    assert out["TarsGo (skipped)"] is None


def test_table_says_which_clock() -> None:
    assert "per CPU second" in run_bench().stdout
    assert "per second of wall time" in run_bench("--clock", "wall").stdout


def test_a_broken_interpreter_costs_only_its_rows() -> None:
    out = run_bench("--python", "/bin/false").stdout
    assert "k8stars pure Python (" in out and "k8stars C (/bin/false): n/a" in out
