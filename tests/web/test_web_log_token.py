"""``k8stars web --log-token-file`` (env ``K8STARS_WEB_LOG_TOKEN_FILE``) as a command: a token file that cannot be
read, an empty one, or one without ``--log-url`` exits 2 naming the option. The token sent to the log service is
proven on the logs page (``test_web_logs.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def k8stars_web(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", "web", "-n", "tars", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**os.environ, **env})  # fmt: skip


@pytest.mark.parametrize("case", ["missing", "empty", "no-url"])
def test_bad_log_token_files_exit_2(tmp_path: Path, case: str) -> None:
    token = tmp_path / "token"
    if case != "missing":
        token.write_text("  \n" if case == "empty" else "a-token")
    url = [] if case == "no-url" else ["--log-url", "http://127.0.0.1:1"]
    r = k8stars_web(*url, env={"K8STARS_WEB_LOG_TOKEN_FILE": str(token)})
    expected = {"missing": f"--log-token-file {token}: No such file", "empty": f"--log-token-file {token}: the "
                "file is empty", "no-url": "--log-token-file needs --log-url"}[case]  # fmt: skip
    assert r.returncode == 2 and expected in r.stderr, r
