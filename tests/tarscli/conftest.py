"""tarscli's fixtures live in tarscli_helpers (the test modules import its helpers too)."""

from tarscli_helpers import notify, pods, registry

__all__ = ["notify", "pods", "registry"]
