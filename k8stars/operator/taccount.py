"""TAccount tokens expire as in K8SFramework's account controller.

A token whose `expirationTime` has passed is removed from `spec.authentication.tokens` (not marked invalid); a
token without a readable expirationTime counts as expired, as Go's zero time does there. Each account is looked at
again when its next token expires. The write is a JSON patch guarded by the resourceVersion, so a token someone adds
meanwhile is never lost (the patch fails, the next pass sees it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from k8stars.kube.client import ApiException, Kube, Obj
from k8stars.kube.informer import WatchCache, key_of
from k8stars.kube.resources import TACCOUNT

from .workqueue import Key, WorkQueue

log = logging.getLogger("k8stars.operator.taccount")

RETRY = 1.0


def _expiry(token: Obj) -> datetime | None:
    text = str(token.get("expirationTime") or "")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def live_tokens(account: Obj, now: datetime) -> tuple[list[Obj], float | None]:
    """The tokens not yet expired, and the seconds until the first of them expires (None: no token left)."""
    tokens = ((account.get("spec") or {}).get("authentication") or {}).get("tokens") or []
    kept: list[Obj] = []
    soonest: float | None = None
    for token in tokens:
        when = _expiry(token)
        if when is None or when < now:
            continue
        kept.append(token)
        left = (when - now).total_seconds()
        soonest = left if soonest is None else min(soonest, left)
    return kept, soonest


class TokenExpiry:
    """Informer on TAccounts + one worker; `run()` after the informer is synced."""

    def __init__(self, kube: Kube, namespace: str | None, wrote: Callable[[str], None]) -> None:
        self.kube = kube
        self.queue = WorkQueue()
        self.cache = WatchCache(kube, TACCOUNT, namespace, None, lambda obj, _kind: self.queue.add(key_of(obj)))
        self._wrote = wrote

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = await self.queue.get()
            try:
                again = await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                detail = exc.body if isinstance(exc, ApiException) else exc
                log.warning("TAccount %s/%s: %s; retrying", *key, detail)
                again = RETRY
            finally:
                self.queue.done(key)
            if again is not None:
                loop.call_later(again, self.queue.add, key)

    async def reconcile(self, key: Key) -> float | None:
        """Drop the expired tokens; the seconds after which to look again."""
        account = self.cache.get(key)
        if account is None:
            return None
        tokens = ((account.get("spec") or {}).get("authentication") or {}).get("tokens") or []
        kept, soonest = live_tokens(account, datetime.now(UTC))
        if len(kept) != len(tokens):
            patch = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": account["metadata"]["resourceVersion"]},
                {"op": "replace", "path": "/spec/authentication/tokens", "value": kept},
            ]
            await self.kube.json_patch(TACCOUNT, key[0], key[1], patch)
            self._wrote("taccount-tokens")
            log.info("TAccount %s/%s: %d expired token(s) removed", *key, len(tokens) - len(kept))
        return None if soonest is None else soonest + 0.05
