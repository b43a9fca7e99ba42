"""Reading TConfig objects the way the operator and the config service both must: when a version became activated
(the newest activation wins a group, in the operator's deactivation and in the config service's choice alike)."""

from __future__ import annotations

from datetime import UTC, datetime

from .client import Obj

ACTIVATED_AT = "k8stars.io/activated-at"  # stamped by the mutating webhook when an old version is re-activated


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 time as an aware UTC datetime (no zone means UTC); None when unparsable."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def activated_since(obj: Obj) -> datetime | None:
    """When the version became activated: its creation, or its re-activation when later; None when neither is
    known (an object not yet stored)."""
    md = obj.get("metadata") or {}
    stamps = [parse_time(str(md.get("creationTimestamp") or "")),
              parse_time(str((md.get("annotations") or {}).get(ACTIVATED_AT) or ""))]  # fmt: skip
    known = [t for t in stamps if t is not None]
    return max(known) if known else None
