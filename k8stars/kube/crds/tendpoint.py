"""TEndpoint (`te`): the operator's mirror of a TServer and the state of its pods (what the registry answers from)."""

from __future__ import annotations

from typing import Any

from .manifest import LEGACY
from .manifest import crd as make_crd
from .schema import Schema, array, boolean, integer, obj, string
from .tserver import release


def tendpoint_schema() -> Schema:
    ports = array(obj({"name": string(), "port": integer(), "isTcp": boolean()}))
    servant = obj(
        {
            "name": string(),
            "port": integer(),
            "thread": integer(),
            "capacity": integer(),
            "connection": integer(),
            "isTars": boolean(),
            "isTcp": boolean(),
            "timeout": integer(),
        }
    )
    spec = obj(
        {
            "app": string(),
            "server": string(),
            "important": integer(),
            "subType": string(),
            "tars": obj(
                {
                    "profile": string(),
                    "servants": array(servant),
                    "ports": ports,
                    "asyncThread": integer(),
                    "template": string(),
                }
            ),
            "normal": obj({"ports": ports}),
            "hostPorts": array(obj({"nameRef": string(), "port": integer()})),
            "release": release(strict=False),
        }
    )
    pod = obj(
        {
            "uid": string(),
            "pid": string(),
            "name": string(),
            "id": string(),
            "podIP": string(),
            "hostIP": string(),
            "startTime": string(),
            # The pods' container statuses as the kubelet reports them (kept whole: newer kubelets add fields).
            "containerStatuses": array(obj(preserve=True)),
            "settingState": string(),
            "presentState": string(),
            "presentMessage": string(),
        }
    )
    status = obj({"pods": array(pod)}, required=["pods"])
    return obj({"spec": spec, "status": status})


def crd() -> dict[str, Any]:
    return make_crd("TEndpoint", tendpoint_schema(), short_names=["te"], status=True, legacy=LEGACY)
