"""Install (server-side apply) the k8s.tars.io CRDs and wait until the apiserver serves them."""

from __future__ import annotations

import asyncio
import time

from .client import Kube
from .crds import CONVERTED, all_crds, with_conversion
from .resources import CRD


async def install_crds(
    kube: Kube, *, timeout: float = 30.0, conversion_url: str | None = None, ca_bundle: str = ""
) -> list[str]:
    """Apply every CRD (idempotent) and wait for Established; returns their names. With `conversion_url` (the
    webhook's https://.../convert) TServer also serves v1beta1 and v1beta2, TFrameworkConfig v1beta2, through that
    conversion webhook."""
    names = []
    for manifest in all_crds():
        if conversion_url and manifest["spec"]["names"]["kind"] in CONVERTED:
            manifest = with_conversion(manifest, conversion_url, ca_bundle)
        await kube.apply(CRD, None, manifest)
        names.append(manifest["metadata"]["name"])
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in sorted(pending):
            crd = await kube.get(CRD, None, name)
            conditions = ((crd or {}).get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                pending.discard(name)
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRDs not Established after {timeout:.0f} s: {', '.join(sorted(pending))}")
            await asyncio.sleep(0.1)
    return names
