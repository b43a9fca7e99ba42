"""Where k8stars keeps local state by default: ``$XDG_DATA_HOME/k8stars``, else ``~/.local/share/k8stars`` (the
embedded stores of the registry and the services, `k8stars up`)."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "k8stars"
