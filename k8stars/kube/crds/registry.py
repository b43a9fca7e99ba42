"""Every kind of group k8s.tars.io: its CRD, and for the kinds whose older versions differ, their conversion by
webhook. A new kind is a module of this package with a `crd()`, listed in KINDS."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import (
    taccount,
    tconfig,
    tendpoint,
    texitedrecord,
    tframeworkconfig,
    tframeworkkey,
    timage,
    tplugin,
    tserver,
    ttemplate,
    ttree,
)
from .manifest import with_webhook_conversion
from .schema import Schema

# The CRD of every kind, in the order they are written and applied.
KINDS: tuple[Callable[[], dict[str, Any]], ...] = (
    tserver.crd,
    tconfig.crd,
    ttemplate.crd,
    timage.crd,
    tendpoint.crd,
    texitedrecord.crd,
    tframeworkconfig.crd,
    ttree.crd,
    taccount.crd,
    tframeworkkey.crd,
    tplugin.crd,
)

# The kinds whose older versions K8SFramework converts by webhook (their schemas differ from v1beta3's), with the
# schema of each older version. Without a conversion webhook their CRDs serve v1beta3 only.
CONVERTED: dict[str, dict[str, Callable[[], Schema]]] = {
    "TServer": tserver.OLDER_VERSIONS,
    "TFrameworkConfig": tframeworkconfig.OLDER_VERSIONS,
}
_OLDER_COLUMNS = {"TServer": tserver.OLD_COLUMNS}


def all_crds() -> list[dict[str, Any]]:
    """Every CRD of the group, in the order they are written and applied."""
    return [make() for make in KINDS]


def with_conversion(
    manifest: dict[str, Any],
    url: str | None = None,
    ca_bundle: str = "",
    *,
    service: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The CRD of a kind in CONVERTED also serving its older versions, converted by the webhook at `url`
    (https://.../convert) or at a Service (`{name, namespace, path, port}`, as a Helm chart installs it)."""
    kind = manifest["spec"]["names"]["kind"]
    if kind not in CONVERTED:
        raise ValueError(f"{kind} needs no conversion webhook: its versions differ in name only")
    if (url is None) == (service is None):
        raise ValueError("with_conversion needs either url or service")
    client: dict[str, Any] = {"url": url} if url is not None else {"service": dict(service or {})}
    if ca_bundle:
        client["caBundle"] = ca_bundle
    return with_webhook_conversion(manifest, CONVERTED[kind], client, _OLDER_COLUMNS.get(kind))
