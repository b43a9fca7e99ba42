"""The k8stars-framework chart's tars-stat Deployment and Service (`helm template`): both servants' ports and the
metrics port, the registration locator, the Prometheus annotations, the values switches."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "k8stars-framework"


def _helm() -> str:
    helm = shutil.which("helm") or str(Path.home() / ".cache" / "k8stars" / "tools" / "bin" / "helm")
    if not Path(helm).is_file():
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    return helm


def render(*sets: str) -> dict[str, dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run([_helm(), "template", "fw", str(CHART), "-n", "tars", *args], capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    docs = [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] == "tars-stat"]
    return {d["kind"]: d for d in docs}


def test_stat_deployment_and_service() -> None:
    docs = render()
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]  # the second: the query services (test_monitor_chart.py)
    assert container["command"] == ["k8stars", "stat"]
    args = container["args"]
    assert "--stat-endpoint=tcp -h 0.0.0.0 -p 10003 -t 60000" in args
    assert "--property-endpoint=tcp -h 0.0.0.0 -p 10004 -t 60000" in args
    assert "--http-host=0.0.0.0" in args and "--http-port=9326" in args
    assert "--locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars.svc.cluster.local -p 17890" in args
    assert "--ip-labels" not in args and "--ret-label" not in args
    assert container["env"][0]["name"] == "POD_IP"  # what the servants are registered at
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9326",
                                              "prometheus.io/path": "/metrics"}  # fmt: skip
    service = docs["Service"]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"stat": 10003, "property": 10004,
                                                                        "metrics": 9326}  # fmt: skip
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_stat_values_switches() -> None:
    assert render("stat.enabled=false") == {}
    docs = render("stat.ipLabels=true", "stat.retLabel=true", "stat.prometheusAnnotations=false", "stat.maxSeries=5")
    pod = docs["Deployment"]["spec"]["template"]
    args = pod["spec"]["containers"][0]["args"]
    assert "--ip-labels" in args and "--ret-label" in args and "--max-series=5" in args
    assert "annotations" not in pod["metadata"] and "annotations" not in docs["Service"]["metadata"]
