"""Where the build script, the pinned versions and the cached binaries live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from k8stars.paths import cache_home

# Used when the source tree (tools/k8s/versions.env) is not at hand, e.g. an installed package
# started against binaries some earlier build left in the cache.
DEFAULT_K8S_VERSION = "v1.36.3"

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def tools_dir() -> Path | None:
    """tools/k8s of the source tree: next to the package, or found upwards from the cwd."""
    env = os.environ.get("K8STARS_K8S_TOOLS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / "tools" / "k8s"]
    cwd = Path.cwd().resolve()
    candidates += [d / "tools" / "k8s" for d in (cwd, *cwd.parents)]
    for candidate in candidates:
        if (candidate / "build.sh").is_file():
            return candidate
    return None


def read_versions(tools: Path | None) -> dict[str, str]:
    """KEY=value pairs of versions.env (comments and blank lines skipped)."""
    if tools is None or not (tools / "versions.env").is_file():
        return {"K8S_VERSION": DEFAULT_K8S_VERSION}
    pairs: dict[str, str] = {}
    for line in (tools / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True)
class Layout:
    """Resolved locations of the build script and the binaries."""

    tools: Path | None
    k8s_version: str
    bin_dir: Path

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def has(self, name: str) -> bool:
        return os.access(self.binary(name), os.X_OK)

    def missing_binaries(self) -> list[str]:
        return [n for n in BINARIES if not os.access(self.binary(n), os.X_OK)]


def resolve_layout() -> Layout:
    tools = tools_dir()
    version = read_versions(tools).get("K8S_VERSION", DEFAULT_K8S_VERSION)
    env_bin = os.environ.get("K8STARS_K8S_BIN")
    bin_dir = Path(env_bin) if env_bin else cache_home() / "k8s" / version / "bin"
    return Layout(tools=tools, k8s_version=version, bin_dir=bin_dir)
