"""The host and volume part of a TServer's settings form: ``spec.k8s`` hostNetwork, hostIPC, hostPorts, mounts,
nodeSelector, notStacked and daemonSet, in K8SFramework's shapes. Saved with the rest of the form (one merge patch,
one resourceVersion). A mount the form cannot show (another source, items, a mode, subPathExpr, ...) is listed and
kept as it is unless a row names it, as env keeps its valueFrom entries."""

from __future__ import annotations

from typing import Any

from k8stars.kube.client import Obj

from .forms import Invalid, kept_rows, number

MARK = "k8sHost"  # sent by the form: a client posting only some fields (a script scaling) leaves this part alone
FLAGS = ("hostNetwork", "hostIPC", "notStacked", "daemonSet")
SOURCES = ("hostPath", "emptyDir", "configMap", "secret")
HOST_PATH_TYPES = ("", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket", "CharDevice", "BlockDevice")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_MOUNT_KEYS = {"name", "source", "mountPath", "readOnly", "subPath"}
_LISTS = ("hostPorts", "mounts", "nodeSelector")


def _plain(value: Obj, key: str) -> bool:
    """A configMap or secret source with nothing but its name (and the CRD's defaults)."""
    return (
        set(value) <= {key, "defaultMode", "optional"}
        and value.get("defaultMode", 0o644) == 0o644
        and value.get("optional", True) is True
    )


def mount_row(mount: Obj) -> Obj | None:
    """The form's row for ``mount``, or None when the form cannot show all of it."""
    source = mount.get("source") or {}
    if set(mount) - _MOUNT_KEYS or not isinstance(source, dict) or len(source) != 1:
        return None
    ((kind, value),) = source.items()
    value = value or {}
    if kind == "hostPath" and set(value) <= {"path", "type"}:
        origin, kind_type = str(value.get("path", "")), str(value.get("type", ""))
    elif kind == "emptyDir" and not value:
        origin, kind_type = "", ""
    elif kind == "configMap" and _plain(value, "name"):
        origin, kind_type = str(value.get("name", "")), ""
    elif kind == "secret" and _plain(value, "secretName"):
        origin, kind_type = str(value.get("secretName", "")), ""
    else:
        return None
    return {"name": mount.get("name", ""), "mountPath": mount.get("mountPath", ""),
            "readOnly": bool(mount.get("readOnly")), "subPath": mount.get("subPath", ""), "source": kind,
            "from": origin, "type": kind_type}  # fmt: skip


def _source(kind: str, origin: str, path_type: str, name: str) -> Obj:
    if kind == "emptyDir":
        return {"emptyDir": {}}
    if kind not in SOURCES:
        raise Invalid(f"mount {name}: the source is one of {', '.join(SOURCES)}")
    if not origin:
        what = {"hostPath": "a host path", "configMap": "a ConfigMap name", "secret": "a Secret name"}[kind]
        raise Invalid(f"mount {name}: {what} is required")
    if kind == "hostPath":
        return {"hostPath": {"path": origin, "type": path_type}}
    if kind == "configMap":
        return {"configMap": {"name": origin}}
    return {"secret": {"secretName": origin}}


def given_mounts(data: dict[str, str]) -> list[Obj]:
    """The mount rows ``m<i>.<field>`` of the form, in order; a row without a name, or marked remove, is left out."""
    out: list[Obj] = []
    for i, name in kept_rows(data, "m", "name"):
        source = _source(data.get(f"m{i}.source", ""), data.get(f"m{i}.from", "").strip(),
                         data.get(f"m{i}.type", ""), name)  # fmt: skip
        mount: Obj = {"name": name, "mountPath": data.get(f"m{i}.mountPath", "").strip(),
                      "readOnly": bool(data.get(f"m{i}.readOnly")), "source": source}  # fmt: skip
        sub_path = data.get(f"m{i}.subPath", "").strip()
        if sub_path:
            mount["subPath"] = sub_path
        out.append(mount)
    return out


def mounts_of(data: dict[str, str], old: list[Obj]) -> list[Obj]:
    """The mounts a save makes: the form's rows, and each mount the form could not show unless a row names it, in
    the order they had (a save that changes nothing changes no pod)."""
    given = given_mounts(data)
    named = {m["name"] for m in given}
    out: list[Obj] = []
    placed: set[str] = set()
    for mount in old:
        name = mount.get("name")
        if name in named and name not in placed:
            # a row showing the mount as it is keeps it exactly (with the CRD's defaults the form does not show)
            out += [mount if mount_row(m) == mount_row(mount) else m for m in given if m["name"] == name]
            placed.add(str(name))
        elif name not in named and mount_row(mount) is None:
            out.append(mount)
    return out + [m for m in given if m["name"] not in placed]


def host_ports_of(data: dict[str, str]) -> list[Obj]:
    """The rows ``h<i>.nameRef`` / ``h<i>.port``: a servant or port name and the node's port it gets."""
    out: list[Obj] = []
    for i, ref in kept_rows(data, "h", "nameRef"):
        port = number(data, f"h{i}.port", f"host port of {ref}")
        if port is None:
            raise Invalid(f"host port of {ref}: a port is required")
        out.append({"nameRef": ref, "port": port})
    return out


def node_selector_of(data: dict[str, str]) -> list[Obj]:
    """The rows ``n<i>.key`` / ``.operator`` / ``.values`` (comma-separated): NodeSelectorRequirements."""
    out: list[Obj] = []
    for i, key in kept_rows(data, "n", "key"):
        item: Obj = {"key": key, "operator": data.get(f"n{i}.operator", "In")}
        values = [v.strip() for v in data.get(f"n{i}.values", "").split(",") if v.strip()]
        if values:
            item["values"] = values
        out.append(item)
    return out


def host_patch(k8s: Obj, data: dict[str, str]) -> Obj:
    """The part of the ``spec.k8s`` merge patch this section makes: only what changed, nothing when the form did not
    send it."""
    if MARK not in data:
        return {}
    new: Obj = {flag: bool(data.get(flag)) for flag in FLAGS}
    new.update(hostPorts=host_ports_of(data), mounts=mounts_of(data, list(k8s.get("mounts") or [])),
               nodeSelector=node_selector_of(data))  # fmt: skip
    return {k: v for k, v in new.items() if v != k8s.get(k, [] if k in _LISTS else False)}


def host_context(ts: Obj) -> dict[str, Any]:
    """What the template shows of this section."""
    spec = ts.get("spec") or {}
    k8s = spec.get("k8s") or {}
    mounts = list(k8s.get("mounts") or [])
    rows = (spec.get("tars") or {}).get("servants") if spec.get("tars") else (spec.get("normal") or {}).get("ports")
    return {"flags": {f: bool(k8s.get(f)) for f in FLAGS}, "host_ports": list(k8s.get("hostPorts") or []),
            "port_names": [str(r.get("name")) for r in rows or []],
            "mount_rows": [r for m in mounts if (r := mount_row(m)) is not None],
            "kept_mounts": [m for m in mounts if mount_row(m) is None],
            "selector": list(k8s.get("nodeSelector") or []), "sources": SOURCES, "path_types": HOST_PATH_TYPES,
            "operators": OPERATORS, "mark": MARK}  # fmt: skip
