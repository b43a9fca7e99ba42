"""Names shared with K8SFramework: API group and version, label keys, reserved ports and placeholders."""

from __future__ import annotations

from typing import Final

GROUP: Final = "k8s.tars.io"
VERSION: Final = "v1beta3"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# Labels K8SFramework puts on TServers, workloads, pods, TEndpoints and TConfigs (users and tools select on them).
SERVER_APP: Final = "tars.io/ServerApp"
SERVER_NAME: Final = "tars.io/ServerName"
SERVER_ID: Final = "tars.io/ServerID"
SUB_TYPE: Final = "tars.io/SubType"
TEMPLATE: Final = "tars.io/Template"
CONFIG_NAME: Final = "tars.io/ConfigName"
POD_SEQ: Final = "tars.io/PodSeq"
CONFIG_VERSION: Final = "tars.io/Version"
ACTIVATED: Final = "tars.io/Activated"
DEACTIVATE: Final = "tars.io/Deactivate"
DELETING: Final = "tars.io/Deleting"
PARENT: Final = "tars.io/Parent"

# Node labels: a node serves the framework of namespace <ns> when it carries `tars.io/node.<ns>`.
NODE_LABEL_PREFIX: Final = "tars.io/node."
ABILITY_LABEL_PREFIX: Final = "tars.io/ability."

# Pod readiness gate the in-pod agent (tarscli) sets when the server is active.
ACTIVE_GATE: Final = "tars.io/active"

# The in-pod node servant listens here; no servant or port of a server may use it.
NODE_SERVANT_PORT: Final = 19385

# Image of a server that has no release yet (K8SFramework's convention: a single space; such pods never start).
PLACEHOLDER_IMAGE: Final = " "

FIELD_MANAGER: Final = "k8stars-operator"


def node_label(namespace: str) -> str:
    return f"{NODE_LABEL_PREFIX}{namespace}"


def resource_name(app: str, server: str) -> str:
    """The conventional object name of a server: lower(app)-lower(server)."""
    return f"{app.lower()}-{server.lower()}"
