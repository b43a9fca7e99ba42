"""The k8stars-framework chart's history, query services and kevent (`helm template`): the stat container keeps the
history, the `query` container of the same pod serves it on K8SFramework's ports, registered through the registry,
the `kevent` container (the only one with a token: read Events, pods, TServers) keeps Events; SQLite on a volume
they mount, MySQL through a Secret; the values that cannot work are refused."""

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
    stat, query, kevent = pod["containers"]
    assert "--history=sqlite" in stat["args"] and "--data-dir=/var/lib/k8stars" in stat["args"]
    assert "--history-days=7" in stat["args"] and "--history-series=20000" in stat["args"]
    assert query["command"] == ["k8stars", "monitor"]
    assert "--stat-endpoint=tcp -h 0.0.0.0 -p 18393 -t 60000" in query["args"]
    assert "--property-endpoint=tcp -h 0.0.0.0 -p 18693 -t 60000" in query["args"]
    assert "--locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars.svc.cluster.local -p 17890" in query["args"]
    assert "--store=sqlite" in query["args"] and query["env"][0]["name"] == "POD_IP"
    assert stat["volumeMounts"] == query["volumeMounts"] == [{"name": "history", "mountPath": "/var/lib/k8stars"}]
    assert {"name": "history", "emptyDir": {}} in pod["volumes"]
    # least privilege: only kevent reads the Kubernetes API, and only its container has the token
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "tars-kevent"
    assert kevent["command"] == ["k8stars", "kevent"] and "--namespace=tars" in kevent["args"]
    assert "--store=sqlite" in kevent["args"] and "--days=7" in kevent["args"]
    token = {"name": "kevent-token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}
    assert token in kevent["volumeMounts"] and all(token not in c["volumeMounts"] for c in (stat, query))
    (projected,) = [v["projected"] for v in pod["volumes"] if v["name"] == "kevent-token"]
    assert projected["sources"][0]["serviceAccountToken"]["path"] == "token"
    rules = docs[("Role", "tars-kevent")]["rules"]
    assert rules == [
        {"apiGroups": [""], "resources": ["events", "pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["k8s.tars.io"], "resources": ["tservers"], "verbs": ["get", "list", "watch"]},
    ]
    assert docs[("RoleBinding", "tars-kevent")]["subjects"][0]["name"] == "tars-kevent"
    ports = {p["name"]: p["port"] for p in docs[("Service", "tars-query")]["spec"]["ports"]}
    assert ports == {"querystat": 18393, "queryproperty": 18693, "http": 9327}


def test_pvc_mysql_and_none() -> None:
    docs = render("stat.history.pvc.enabled=true")
    deploy = docs[("Deployment", "tars-stat")]["spec"]
    assert deploy["strategy"] == {"type": "Recreate"}
    (history,) = [v for v in deploy["template"]["spec"]["volumes"] if v["name"] == "history"]
    assert history["persistentVolumeClaim"] == {"claimName": "tars-stat-history"}
    assert ("PersistentVolumeClaim", "tars-stat-history") in docs

    docs = render("stat.history.store=mysql", "stat.history.dsn=mysql://u:p@db:3306/db_tars", "stat.replicas=2")
    pod = docs[("Deployment", "tars-stat")]["spec"]["template"]["spec"]
    for c in pod["containers"]:
        dsn = [e for e in c["env"] if e["name"] == "K8STARS_MONITOR_DSN"]
        assert dsn == [{"name": "K8STARS_MONITOR_DSN",
                        "valueFrom": {"secretKeyRef": {"name": "tars-monitor-dsn", "key": "dsn"}}}]  # fmt: skip
        assert all(m["name"] != "history" for m in c.get("volumeMounts", []))
    assert docs[("Secret", "tars-monitor-dsn")]["stringData"] == {"dsn": "mysql://u:p@db:3306/db_tars"}

    docs = render("stat.history.store=none")
    (stat,) = docs[("Deployment", "tars-stat")]["spec"]["template"]["spec"]["containers"]
    assert "--history=none" in stat["args"] and ("Service", "tars-query") not in docs
    assert ("Role", "tars-kevent") not in docs


@pytest.mark.parametrize(
    ("sets", "why"),
    [(["stat.replicas=2"], "needs stat.history.store mysql"), (["stat.history.store=mysql"], "needs stat.history.dsn")],
)
def test_values_that_cannot_work(sets: list[str], why: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as e:
        render(*sets)
    assert why in e.value.stderr
