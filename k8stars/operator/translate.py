"""TServer → StatefulSet / DaemonSet, headless Service and the agent's server-meta ConfigMap: pure functions of the
objects (the TEndpoint and other records: k8stars.operator.bookkeeping), so that the same TServer always renders the
same manifests (a restarted operator computes identical hashes and writes nothing).

Conventions follow K8SFramework (docs/operator.md lists them): object names = the TServer's name, labels
`tars.io/ServerApp`/`tars.io/ServerName` (+ `tars.io/ServerID` = release id on pods), one container named
lower(app)-lower(server), the placeholder image " " until a release exists, node affinity on
`tars.io/node.<namespace>`, `tars.io/active` readiness gate for TARS servers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.kube.templates import TemplateError as TemplateError  # re-exported: the controller uses them here
from k8stars.kube.templates import server_template as server_template
from k8stars.kube.templates import template_chain as template_chain
from k8stars.tarscli.podfiles import DEFAULT_NODE_DIR as NODE_DIR
from k8stars.tarscli.podfiles import META_ENV, TEMPLATE_ENV

HASH_ANNOTATION = "k8stars.io/spec-hash"
CLAIMS_HASH = "k8stars.io/claims-hash"  # on the StatefulSet: a change of its claim templates rebuilds it
SERVER_META_HASH = "k8stars.io/server-meta-hash"  # on the pod template: servant changes roll the pods
SERVER_META_KEY = "_server_meta.yaml"
TEMPLATE_KEY = "template.conf"  # beside the meta file: the TTemplate chain and the profile, for tarscli to render
TARSNODE_WORK_DIR = "tarsnode-work-dir"
TARSNODE_MOUNT = NODE_DIR  # K8SFramework's path, in the init container and the server container
HOST_TIMEZONE = "host-timezone"
NODE_SOURCE_DIR = "/opt/k8stars/node"  # files the node image contributes (copied to <work dir>/bin)
# The agent as the server container sees it: the tarsnode init container copied it into the work dir, and the base
# images' ENTRYPOINT runs it (k8stars/image/bases.py); probes and hooks call it by this path, the image has no other.
AGENT = f"{NODE_DIR}/bin/tarscli"
STORAGE_CLASS = "tars-storage-class"
LOCAL_VOLUME_LABEL = "tars.io/LocalVolume"  # on a tLocalVolume claim, K8SFramework's: the mount's name
GRACE_SECONDS = 90


def spec_hash(manifest: Any) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def _spec(ts: Obj) -> Obj:
    spec: Obj = ts.get("spec") or {}
    return spec


def _k8s(ts: Obj) -> Obj:
    k8s: Obj = _spec(ts).get("k8s") or {}
    return k8s


def is_tars(ts: Obj) -> bool:
    return _spec(ts).get("subType") == "tars"


def release(ts: Obj) -> Obj:
    rel: Obj = _spec(ts).get("release") or {}
    return rel


def selector_labels(ts: Obj) -> dict[str, str]:
    spec = _spec(ts)
    return {meta.SERVER_APP: str(spec["app"]), meta.SERVER_NAME: str(spec["server"])}


def selector_string(ts: Obj) -> str:
    return ",".join(f"{k}={v}" for k, v in selector_labels(ts).items())


def pod_labels(ts: Obj) -> dict[str, str]:
    labels = selector_labels(ts)
    if release(ts).get("id"):
        labels[meta.SERVER_ID] = str(release(ts)["id"])
    return labels


def container_name(ts: Obj) -> str:
    spec = _spec(ts)
    return meta.resource_name(str(spec["app"]), str(spec["server"]))


def owner_reference(ts: Obj) -> Obj:
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "TServer",
        "name": ts["metadata"]["name"],
        "uid": ts["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(ts: Obj, labels: dict[str, str] | None = None) -> Obj:
    return {
        "name": ts["metadata"]["name"],
        "namespace": ts["metadata"]["namespace"],
        "labels": labels if labels is not None else selector_labels(ts),
        "ownerReferences": [owner_reference(ts)],
    }


def ports(ts: Obj) -> list[tuple[str, int, bool]]:
    """(name, port, isTcp) of every servant and extra port (normal servers: their ports)."""
    spec = _spec(ts)
    if is_tars(ts):
        tars = spec.get("tars") or {}
        found = [(str(s["name"]), int(s["port"]), bool(s.get("isTcp", True))) for s in tars.get("servants") or []]
        found += [(str(p["name"]), int(p["port"]), bool(p.get("isTcp", True))) for p in tars.get("ports") or []]
        return found
    normal = spec.get("normal") or {}
    return [(str(p["name"]), int(p["port"]), bool(p.get("isTcp", True))) for p in normal.get("ports") or []]


def replicas(ts: Obj) -> int:
    """The desired pod count: none before the first release (K8SFramework forces 0 too)."""
    if not release(ts).get("image"):
        return 0
    return int(_k8s(ts).get("replicas") or 0)


# --- Service ----------------------------------------------------------------------------------------------------
def service(ts: Obj) -> Obj:
    svc_ports = [
        {"name": name.lower(), "port": port, "targetPort": port, "protocol": "TCP" if tcp else "UDP"}
        for name, port, tcp in ports(ts)
    ]
    spec: Obj = {"clusterIP": "None", "type": "ClusterIP", "selector": selector_labels(ts), "ports": svc_ports}
    body: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": object_meta(ts), "spec": spec}
    body["metadata"]["annotations"] = {HASH_ANNOTATION: spec_hash(body)}
    return body


# --- pod template -----------------------------------------------------------------------------------------------
def _exists(key: str) -> Obj:
    return {"key": key, "operator": "Exists"}


def _affinity(ts: Obj, namespace: str, daemon: bool) -> Obj:
    k8s = _k8s(ts)
    spec = _spec(ts)
    app, server = str(spec["app"]), str(spec["server"])
    expressions = [dict(e) for e in k8s.get("nodeSelector") or []]
    expressions.append({"key": meta.node_label(namespace), "operator": "Exists"})
    preferred: list[Obj] = []
    ability = k8s.get("abilityAffinity", "AppOrServerPreferred")
    prefix = f"{meta.ABILITY_LABEL_PREFIX}{namespace}."
    if not daemon:
        if ability == "AppRequired":
            expressions.append({"key": f"{prefix}{app}", "operator": "Exists"})
        elif ability == "ServerRequired":
            expressions.append({"key": f"{prefix}{app}-{server}", "operator": "Exists"})
        elif ability == "AppOrServerPreferred":
            preferred = [
                {"weight": 60, "preference": {"matchExpressions": [_exists(f"{prefix}{app}-{server}")]}},
                {"weight": 30, "preference": {"matchExpressions": [_exists(f"{prefix}{app}")]}},
            ]
    required = {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
    node_affinity: Obj = {"requiredDuringSchedulingIgnoredDuringExecution": required}
    if preferred:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    affinity: Obj = {"nodeAffinity": node_affinity}
    if k8s.get("notStacked") and not daemon:
        affinity["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": selector_labels(ts)},
                    "namespaces": [namespace],
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    return affinity


def _claim_template_mounts(ts: Obj) -> list[Obj]:
    return [
        m
        for m in _k8s(ts).get("mounts") or []
        if "persistentVolumeClaimTemplate" in (m.get("source") or {}) or "tLocalVolume" in (m.get("source") or {})
    ]


def _volumes(ts: Obj) -> list[Obj]:
    volumes: list[Obj] = []
    for mount in _k8s(ts).get("mounts") or []:
        source = dict(mount.get("source") or {})
        if "persistentVolumeClaimTemplate" in source or "tLocalVolume" in source:
            continue
        volumes.append({"name": mount["name"], **source})
    volumes.append({"name": HOST_TIMEZONE, "hostPath": {"path": "/etc/localtime"}})
    if is_tars(ts):
        volumes.append({"name": TARSNODE_WORK_DIR, "emptyDir": {}})
    return volumes


def _volume_mounts(ts: Obj) -> list[Obj]:
    mounts: list[Obj] = []
    for mount in _k8s(ts).get("mounts") or []:
        vm: Obj = {
            "name": mount["name"],
            "mountPath": mount.get("mountPath", ""),
            "readOnly": bool(mount.get("readOnly")),
        }
        for key in ("subPath", "subPathExpr", "mountPropagation"):
            if mount.get(key):
                vm[key] = mount[key]
        mounts.append(vm)
    mounts.append({"name": HOST_TIMEZONE, "mountPath": "/etc/localtime", "readOnly": True})
    if is_tars(ts):
        mounts.append({"name": TARSNODE_WORK_DIR, "mountPath": TARSNODE_MOUNT})
    return mounts


def volume_claim_templates(ts: Obj) -> list[Obj]:
    claims: list[Obj] = []
    for mount in _claim_template_mounts(ts):
        source = mount["source"]
        if "persistentVolumeClaimTemplate" in source:
            tpl = source["persistentVolumeClaimTemplate"]
            claim: Obj = {"metadata": {"name": mount["name"], **(tpl.get("metadata") or {})}, "spec": tpl["spec"]}
        else:  # tLocalVolume: K8SFramework's claim on its local storage class (owner and mode in annotations)
            local = source["tLocalVolume"]
            labels = {**selector_labels(ts), LOCAL_VOLUME_LABEL: str(mount["name"])}
            claim = {
                "metadata": {
                    "name": mount["name"],
                    "labels": labels,
                    "annotations": {
                        "tars.io/LocalVolumeUID": str(local.get("uid", "0")),
                        "tars.io/LocalVolumeGID": str(local.get("gid", "0")),
                        "tars.io/LocalVolumeMode": str(local.get("mode", "755")),
                    },
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "selector": {"matchLabels": dict(labels)},
                    "storageClassName": STORAGE_CLASS,
                    "volumeMode": "Filesystem",
                    "resources": {"requests": {"storage": "1G"}},
                },
            }
        claims.append(claim)
    return claims


def removed_local_claims(existing: Obj, desired: Obj) -> list[str]:
    """Claim templates on the framework's local storage class that the TServer no longer has: K8SFramework deletes
    their PVCs when it rebuilds the StatefulSet (a node-local volume nothing mounts any more would pin pods)."""
    wanted = {c["metadata"]["name"] for c in desired["spec"].get("volumeClaimTemplates") or []}
    return [
        str(c["metadata"]["name"])
        for c in (existing.get("spec") or {}).get("volumeClaimTemplates") or []
        if (c.get("spec") or {}).get("storageClassName") == STORAGE_CLASS and c["metadata"]["name"] not in wanted
    ]


def local_claims_selector(ts: Obj, names: list[str]) -> str:
    return f"{selector_string(ts)},{LOCAL_VOLUME_LABEL} in ({','.join(sorted(names))})"


def _field(name: str, path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _node_env(ts: Obj) -> list[Obj]:
    """The tarsnode init container's environment: K8SFramework's (the pod's namespace, name and IP, the server's app
    and name, LauncherType) and what the agent needs besides — the grace period, and the server's meta and config
    template from its ConfigMap, read when the pod starts (a template edit reaches a pod at its next start, as in
    K8SFramework). tarscli nodeinit writes it all into the work dir, for the server container's agent."""
    spec = _spec(ts)
    meta_map = server_meta_name(ts)
    env = [
        _field("Namespace", "metadata.namespace"),
        _field("PodName", "metadata.name"),
        _field("PodIP", "status.podIP"),
        {"name": "ServerApp", "value": str(spec["app"])},
        {"name": "ServerName", "value": str(spec["server"])},
    ]
    launcher = _k8s(ts).get("launcherType", "background")
    if launcher != "background":
        env.append({"name": "LauncherType", "value": str(launcher)})
    env += [
        {"name": "TARS_TERMINATION_GRACE_PERIOD", "value": f"{GRACE_SECONDS}s"},
        {"name": "TARS_SYNC_DIRECTORY", "value": NODE_SOURCE_DIR},
        {"name": META_ENV, "valueFrom": {"configMapKeyRef": {"name": meta_map, "key": SERVER_META_KEY}}},
        {
            "name": TEMPLATE_ENV,
            "valueFrom": {"configMapKeyRef": {"name": meta_map, "key": TEMPLATE_KEY, "optional": True}},
        },
    ]
    return env


def _container_ports(ts: Obj) -> list[Obj]:
    host_ports = {str(h["nameRef"]): int(h["port"]) for h in _k8s(ts).get("hostPorts") or []}
    result: list[Obj] = []
    for name, port, tcp in ports(ts):
        proto = "TCP" if tcp else "UDP"
        if is_tars(ts):
            if name in host_ports:
                hp = host_ports[name]
                result.append({"name": f"p{hp}-{port}"[:15], "containerPort": port, "hostPort": hp, "protocol": proto})
        else:
            entry: Obj = {"name": name, "containerPort": port, "protocol": proto}
            if name in host_ports:
                entry["hostPort"] = host_ports[name]
            result.append(entry)
    return result


def pod_template(ts: Obj, namespace: str, *, daemon: bool = False) -> Obj:
    k8s = _k8s(ts)
    rel = release(ts)
    tars = is_tars(ts)
    container: Obj = {
        "name": container_name(ts),
        "image": rel.get("image") or meta.PLACEHOLDER_IMAGE,
        "imagePullPolicy": k8s.get("imagePullPolicy", "Always"),
        "volumeMounts": _volume_mounts(ts),
    }
    if _k8s(ts).get("env"):  # exactly the user's: what the agent needs comes through the work dir
        container["env"] = [dict(e) for e in _k8s(ts)["env"]]
    if k8s.get("envFrom"):
        container["envFrom"] = [dict(e) for e in k8s["envFrom"]]
    if k8s.get("resources"):
        container["resources"] = k8s["resources"]
    if k8s.get("command"):  # as K8SFramework: none -> the image's ENTRYPOINT (a base image's: the agent)
        container["command"] = list(k8s["command"])
    if k8s.get("args"):
        container["args"] = list(k8s["args"])
    cports = _container_ports(ts)
    if cports:
        container["ports"] = cports
    if tars:
        # No readiness probe, as K8SFramework renders none: the tars.io/active gate (the agent's reports, through the
        # registry) is the readiness. An exec probe started the agent every 5 s in every pod and, timing out under CPU
        # starvation, took healthy pods out of readiness.
        container["lifecycle"] = {"preStop": {"exec": {"command": [AGENT, "prestop"]}}}
    pod_spec: Obj = {
        "containers": [container],
        "volumes": _volumes(ts),
        "affinity": _affinity(ts, namespace, daemon),
        "dnsPolicy": "ClusterFirstWithHostNet" if k8s.get("hostNetwork") else "ClusterFirst",
        "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "enableServiceLinks": False,
    }
    if tars:
        pod_spec["initContainers"] = [
            {
                "name": "tarsnode",
                "image": rel.get("nodeImage") or meta.PLACEHOLDER_IMAGE,
                "imagePullPolicy": k8s.get("imagePullPolicy", "Always"),
                "command": [f"{NODE_SOURCE_DIR}/tarscli", "nodeinit"],
                "env": _node_env(ts),
                "volumeMounts": [{"name": TARSNODE_WORK_DIR, "mountPath": TARSNODE_MOUNT}],
            }
        ]
    gates = [meta.ACTIVE_GATE] if tars else []
    gates += [g for g in k8s.get("readinessGates") or [] if g not in gates]
    if gates:
        pod_spec["readinessGates"] = [{"conditionType": g} for g in gates]
    if k8s.get("serviceAccount"):
        pod_spec["serviceAccountName"] = k8s["serviceAccount"]
    if k8s.get("hostNetwork"):
        pod_spec["hostNetwork"] = True
    if k8s.get("hostIPC"):
        pod_spec["hostIPC"] = True
    secrets = [rel.get("secret")] + ([rel.get("nodeSecret")] if tars else [])
    pull = [{"name": s} for s in dict.fromkeys(s for s in secrets if s)]
    if pull:
        pod_spec["imagePullSecrets"] = pull
    template_meta: Obj = {"labels": pod_labels(ts)}
    if tars:
        template_meta["annotations"] = {SERVER_META_HASH: spec_hash(server_meta(ts))}
    return {"metadata": template_meta, "spec": pod_spec}


# --- workloads --------------------------------------------------------------------------------------------------
def statefulset(ts: Obj, existing: Obj | None = None) -> Obj:
    """The StatefulSet. `podManagementPolicy`, which the apiserver does not let change, keeps its current value when
    the StatefulSet exists; claim templates, which cannot change either, are compared through CLAIMS_HASH and a
    change rebuilds the StatefulSet (see needs_rebuild)."""
    k8s = _k8s(ts)
    namespace = ts["metadata"]["namespace"]
    strategy = k8s.get("updateStrategy") or {}
    update: Obj = {"type": strategy.get("type", "RollingUpdate")}
    if update["type"] == "RollingUpdate":
        update["rollingUpdate"] = {"partition": int((strategy.get("rollingUpdate") or {}).get("partition", 0))}
    spec: Obj = {
        "replicas": replicas(ts),
        "serviceName": ts["metadata"]["name"],
        "selector": {"matchLabels": selector_labels(ts)},
        "podManagementPolicy": k8s.get("podManagementPolicy", "Parallel"),
        "updateStrategy": update,
        "template": pod_template(ts, namespace),
    }
    claims = volume_claim_templates(ts)
    if claims:
        spec["volumeClaimTemplates"] = claims
    body: Obj = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": object_meta(ts), "spec": spec}
    # The hash covers what the TServer asks for, so that it is the same before and after the first create.
    body["metadata"]["annotations"] = {HASH_ANNOTATION: spec_hash(body), CLAIMS_HASH: spec_hash(claims)}
    if existing is not None:
        current = existing.get("spec") or {}
        spec["podManagementPolicy"] = current.get("podManagementPolicy", spec["podManagementPolicy"])
    return body


def needs_rebuild(existing: Obj, desired: Obj) -> bool:
    """The claim templates changed: the apiserver refuses that on an existing StatefulSet, so it is deleted (its pods
    orphaned, left running) and created anew, as K8SFramework does. A StatefulSet from before CLAIMS_HASH is
    compared by claim names."""
    have = (existing["metadata"].get("annotations") or {}).get(CLAIMS_HASH)
    want = desired["metadata"]["annotations"][CLAIMS_HASH]
    if have is not None:
        return bool(have != want)
    names = [c["metadata"]["name"] for c in (existing.get("spec") or {}).get("volumeClaimTemplates") or []]
    return names != [c["metadata"]["name"] for c in desired["spec"].get("volumeClaimTemplates") or []]


def daemonset(ts: Obj) -> Obj:
    namespace = ts["metadata"]["namespace"]
    spec: Obj = {
        "selector": {"matchLabels": selector_labels(ts)},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": pod_template(ts, namespace, daemon=True),
    }
    body: Obj = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": object_meta(ts), "spec": spec}
    body["metadata"]["annotations"] = {HASH_ANNOTATION: spec_hash(body)}
    return body


# --- the server description for the in-pod agent ---------------------------------------------------------------
def server_meta_name(ts: Obj) -> str:
    return f"{ts['metadata']['name']}-server-meta"


def server_meta(ts: Obj) -> Obj:
    """The TServer as tarscli's `_server_meta.yaml` (K8STARS's ServerConf): one adapter per servant on its declared
    port (so that the Service's ports reach it), threads/connections/queue from the servant."""
    spec = _spec(ts)
    tars = spec.get("tars") or {}
    adapters = []
    for s in tars.get("servants") or []:
        proto = "tcp" if s.get("isTcp", True) else "udp"
        timeout = int(s.get("timeout", 60000))
        adapters.append(
            {
                "object": str(s["name"]),
                "endpoint": f"{proto} -h ${{local_ip}} -p {int(s['port'])} -t {timeout}",
                "maxconns": int(s.get("connection", 10000)),
                "protocol": "tars" if s.get("isTars", True) else "not_tars",
                "queuecap": int(s.get("capacity", 10000)),
                "queuetimeout": timeout,
                "threads": int(s.get("thread", 3)),
            }
        )
    return {
        "application": str(spec["app"]),
        "server": str(spec["server"]),
        "asyncThreadNum": int(tars.get("asyncThread", 3)),
        "adapters": adapters,
    }


def server_meta_configmap(ts: Obj, template: str = "") -> Obj:
    """The agent's inputs. The template is not part of SERVER_META_HASH: a template or profile edit reaches the pods
    at their next start, as in K8SFramework, instead of rolling every server that uses the template."""
    data = {SERVER_META_KEY: json.dumps(server_meta(ts), indent=2, sort_keys=False) + "\n"}
    if template:
        data[TEMPLATE_KEY] = template
    body: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**object_meta(ts), "name": server_meta_name(ts)},
        "data": data,
    }
    body["metadata"]["annotations"] = {HASH_ANNOTATION: spec_hash(body)}
    return body
