"""Helpers shared by the operator tests (a module of its own: conftest modules are not importable by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from k8stars.kube.client import Resource
from k8stars.kube.resources import TARS_KINDS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "k8s"


def resource_of(kind: str) -> Resource:
    return next(r for r in TARS_KINDS if r.kind == kind)


def load_examples(name: str) -> list[dict[str, Any]]:
    with open(EXAMPLES / name) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]
