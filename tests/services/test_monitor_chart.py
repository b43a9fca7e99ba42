"""The k8stars-framework chart's history and query services (`helm template`): the stat container keeps the history,
the `query` container of the same pod serves it on K8SFramework's ports, registered through the registry; SQLite
on a volume both mount, MySQL through a Secret; the values that cannot work are refused."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.services.test_stat_chart import CHART, _helm


def render(*sets: str) -> dict[tuple[str, str], dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run([_helm(), "template", "fw", str(CHART), "-n", "tars", *args], capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}


def test_query_container_shares_the_sqlite_history() -> None:
    docs = render()
    pod = docs[("Deployment", "tars-stat")]["spec"]["template"]["spec"]
    stat, query = pod["containers"]
    assert "--history=sqlite" in stat["args"] and "--data-dir=/var/lib/k8stars" in stat["args"]
    assert "--history-days=7" in stat["args"] and "--history-series=20000" in stat["args"]
    assert query["command"] == ["k8stars", "monitor"]
    assert "--stat-endpoint=tcp -h 0.0.0.0 -p 18393 -t 60000" in query["args"]
    assert "--property-endpoint=tcp -h 0.0.0.0 -p 18693 -t 60000" in query["args"]
    assert "--locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars.svc.cluster.local -p 17890" in query["args"]
    assert "--store=sqlite" in query["args"] and query["env"][0]["name"] == "POD_IP"
    assert stat["volumeMounts"] == query["volumeMounts"] == [{"name": "history", "mountPath": "/var/lib/k8stars"}]
    assert pod["volumes"] == [{"name": "history", "emptyDir": {}}]
    assert pod["automountServiceAccountToken"] is False  # least privilege: neither reads the Kubernetes API
    ports = {p["name"]: p["port"] for p in docs[("Service", "tars-query")]["spec"]["ports"]}
    assert ports == {"querystat": 18393, "queryproperty": 18693, "http": 9327}


def test_pvc_mysql_and_none() -> None:
    docs = render("stat.history.pvc.enabled=true")
    deploy = docs[("Deployment", "tars-stat")]["spec"]
    assert deploy["strategy"] == {"type": "Recreate"}
    assert deploy["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "tars-stat-history"}
    assert ("PersistentVolumeClaim", "tars-stat-history") in docs

    docs = render("stat.history.store=mysql", "stat.history.dsn=mysql://u:p@db:3306/db_tars", "stat.replicas=2")
    pod = docs[("Deployment", "tars-stat")]["spec"]["template"]["spec"]
    for c in pod["containers"]:
        dsn = [e for e in c["env"] if e["name"] == "K8STARS_MONITOR_DSN"]
        assert dsn == [{"name": "K8STARS_MONITOR_DSN",
                        "valueFrom": {"secretKeyRef": {"name": "tars-monitor-dsn", "key": "dsn"}}}]  # fmt: skip
        assert "volumeMounts" not in c
    assert docs[("Secret", "tars-monitor-dsn")]["stringData"] == {"dsn": "mysql://u:p@db:3306/db_tars"}

    docs = render("stat.history.store=none")
    (stat,) = docs[("Deployment", "tars-stat")]["spec"]["template"]["spec"]["containers"]
    assert "--history=none" in stat["args"] and ("Service", "tars-query") not in docs


@pytest.mark.parametrize(
    ("sets", "why"),
    [(["stat.replicas=2"], "needs stat.history.store mysql"), (["stat.history.store=mysql"], "needs stat.history.dsn")],
)
def test_values_that_cannot_work(sets: list[str], why: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as e:
        render(*sets)
    assert why in e.value.stderr
