"""TConfig (`tc`): one version of a configuration file of an app, a server or one pod of it (top-level fields)."""

from __future__ import annotations

from typing import Any

from .manifest import LEGACY
from .manifest import crd as make_crd
from .schema import TARS_NAME, Schema, boolean, column, obj, string


def tconfig_schema() -> Schema:
    return obj(
        {
            "app": string(TARS_NAME, max_length=63),
            "server": string(r"^([A-Za-z][0-9A-Za-z]*)?$", max_length=63, default=""),
            "configName": string(r"^([0-9A-Za-z][-._0-9A-Za-z]*)?[0-9A-Za-z]$", max_length=63),
            "configContent": string(max_length=1560000),
            "podSeq": string(r"^(m|0|[1-9][0-9]?)$", default="m"),
            "updateTime": string(fmt="date-time"),
            "updatePerson": string(max_length=100),
            "updateReason": string(max_length=1600),
            "activated": boolean(True),
            # Empty allowed: Go clients always send the field, and the webhook gives every new TConfig its version.
            "version": string(r"^(([0-9a-z][-0-9a-z]*)?[0-9a-z])?$", max_length=63),
        },
        required=["app", "configName", "configContent"],
    )


def crd() -> dict[str, Any]:
    return make_crd(
        "TConfig",
        tconfig_schema(),
        short_names=["tc"],
        legacy=LEGACY,
        columns=[
            column("App", "string", ".app"),
            column("Server", "string", ".server"),
            column("PodSeq", "string", ".podSeq"),
            column("ConfigName", "string", ".configName"),
            column("Version", "string", ".version"),
            column("Activated", "boolean", ".activated"),
        ],
    )
