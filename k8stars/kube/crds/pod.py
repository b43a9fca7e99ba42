"""Schemas of the pod-level pieces of TServer.spec.k8s (env, envFrom, mounts, resources), K8SFramework's."""

from __future__ import annotations

from .schema import (
    DNS_SUBDOMAIN,
    ENV_NAME,
    FILE_KEY,
    LABEL_KEY,
    LABEL_VALUE,
    MIXED_LABEL,
    QUANTITY,
    Schema,
    array,
    boolean,
    int_or_string,
    integer,
    obj,
    string,
)


def _key_ref() -> Schema:
    return obj(
        {
            "name": string(DNS_SUBDOMAIN, max_length=253),
            "key": string(MIXED_LABEL, max_length=63),
            "optional": boolean(True),
        },
        required=["name", "key"],
    )


def env() -> Schema:
    value_from = obj(
        {
            "fieldRef": obj({"apiVersion": string(), "fieldPath": string()}),
            "resourceFieldRef": obj(
                {"containerName": string(), "resource": string(), "divisor": int_or_string(default="1")},
                required=["resource"],
            ),
            "configMapKeyRef": _key_ref(),
            "secretKeyRef": _key_ref(),
        },
        one_of=[["fieldRef"], ["resourceFieldRef"], ["configMapKeyRef"], ["secretKeyRef"]],
    )
    item = obj(
        {"name": string(ENV_NAME), "value": string(), "valueFrom": value_from},
        required=["name"],
        one_of=[["value"], ["valueFrom"]],
    )
    return array(item)


def env_from() -> Schema:
    def ref() -> Schema:
        return obj({"name": string(DNS_SUBDOMAIN, max_length=253), "optional": boolean(True)}, required=["name"])

    item = obj(
        {"configMapRef": ref(), "secretRef": ref(), "prefix": string(r"^[A-Za-z][_0-9A-Za-z]*$", max_length=63)},
        one_of=[["configMapRef"], ["secretRef"]],
    )
    return array(item)


def _key_to_path() -> Schema:
    return obj(
        {"key": string(FILE_KEY), "path": string(), "mode": integer(0, 0o777, 0o644)},
        required=["key", "path"],
    )


def label_map() -> Schema:
    return obj(additional=string(LABEL_VALUE, max_length=63))


def _storage_resources() -> Schema:
    storage = obj({"storage": int_or_string(QUANTITY)}, required=["storage"])
    return obj({"limits": storage, "requests": storage}, required=["requests"])


def _mount_source() -> Schema:
    return obj(
        {
            "configMap": obj(
                {
                    "name": string(),
                    "items": array(_key_to_path()),
                    "defaultMode": integer(0, 0o777, 0o644),
                    "optional": boolean(True),
                },
                required=["name"],
            ),
            "secret": obj(
                {
                    "secretName": string(),
                    "items": array(_key_to_path()),
                    "defaultMode": integer(0, 0o777, 0o644),
                    "optional": boolean(True),
                },
                required=["secretName"],
            ),
            "emptyDir": obj({"medium": string(enum=["", "Memory"]), "sizeLimit": int_or_string()}),
            "hostPath": obj(
                {
                    "path": string(),
                    "type": string(
                        enum=[
                            "",
                            "Directory",
                            "DirectoryOrCreate",
                            "FileOrCreate",
                            "File",
                            "Socket",
                            "CharDevice",
                            "BlockDevice",
                        ]
                    ),
                },
                required=["path", "type"],
            ),
            "persistentVolumeClaim": obj({"claimName": string(), "readOnly": boolean(False)}, required=["claimName"]),
            "persistentVolumeClaimTemplate": obj(
                {
                    "metadata": obj({"labels": label_map(), "annotations": label_map()}),
                    "spec": obj(
                        {
                            "accessModes": array(
                                string(enum=["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"]), min_items=1
                            ),
                            "volumeName": string(),
                            "storageClassName": string(),
                            "volumeMode": string(enum=["Block", "Filesystem"]),
                            "resources": _storage_resources(),
                            "selector": obj(
                                {
                                    "matchLabels": label_map(),
                                    "matchExpressions": array(
                                        obj(
                                            {
                                                "key": string(LABEL_KEY, max_length=63),
                                                "operator": string(enum=["In", "NotIn", "Exists", "DoesNotExist"]),
                                                "values": array(string(LABEL_VALUE, max_length=63)),
                                            }
                                        )
                                    ),
                                }
                            ),
                        },
                        required=["accessModes", "resources"],
                    ),
                },
                required=["spec"],
            ),
            "tLocalVolume": obj(
                {
                    "uid": string(r"^(0|[1-9][0-9]{0,5})$", default="0"),
                    "gid": string(r"^(0|[1-9][0-9]{0,5})$", default="0"),
                    # K8SFramework spells this rule `parrern` (so does not enforce it): neither does this schema.
                    "mode": string(default="755"),
                }
            ),
        },
        one_of=[
            ["configMap"],
            ["secret"],
            ["persistentVolumeClaim"],
            ["persistentVolumeClaimTemplate"],
            ["hostPath"],
            ["emptyDir"],
            ["tLocalVolume"],
        ],
    )


def mounts() -> Schema:
    item = obj(
        {
            "name": string(MIXED_LABEL, max_length=63),
            "source": _mount_source(),
            "readOnly": boolean(False),
            "mountPath": string(),
            "subPath": string(),
            "mountPropagation": string(enum=["None", "HostToContainer", "Bidirectional"]),
            "subPathExpr": string(),
        }
    )
    return array(item)


def resources() -> Schema:
    def cpu_mem() -> Schema:
        return obj({"memory": string(QUANTITY), "cpu": string(QUANTITY)})

    return obj({"requests": cpu_mem(), "limits": cpu_mem()}, default={})
