"""Reading pods the way the framework services index them."""

from __future__ import annotations

from .client import Obj


def pod_ips(pod: Obj) -> set[str]:
    """The addresses a pod answers at (``status.podIP`` and ``status.podIPs``); none once it has finished, as its IP
    is then free for another pod."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return set()
    ips = {str(p.get("ip")) for p in status.get("podIPs") or [] if p.get("ip")}
    if status.get("podIP"):
        ips.add(str(status["podIP"]))
    return ips
