"""Leader election on a coordination.k8s.io Lease, so that several operator replicas can run and one reconciles.

The holder renews the Lease every `renew` seconds; another replica takes over once the Lease has not changed for
`duration` seconds by its own clock (it times how long it has seen the same renewTime, as client-go does, so clock
skew between hosts does not matter). Writes carry the resourceVersion read: of two replicas racing for an expired
Lease exactly one wins, the other sees 409 and keeps waiting. A clean shutdown gives the Lease up at once.

No two leaders at once: the holder counts itself leader only until `renew_deadline` (< `duration`) after the start
of its last successful renewal — the others wait at least `duration` after seeing that renewal. `check()` raises
LeadershipLost past the deadline; the operator calls it before every write (a fenced Kube), so a replica that was
paused (SIGSTOP, a stalled VM) and wakes up after another took over writes nothing, and `hold()` ends it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass

from k8stars.kube.client import ApiException, Kube, Obj, Resource

log = logging.getLogger("k8stars.operator.leader")

LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")


class LeadershipLost(RuntimeError):
    pass


def _micro_time() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    kube: Kube
    namespace: str
    identity: str
    name: str = "k8stars-operator"
    duration: float = 15.0
    renew: float = 2.0
    retry: float = 2.0
    renew_deadline: float = 0.0  # 0: two thirds of `duration` (client-go: 10 s of 15)

    def __post_init__(self) -> None:
        self._seen: tuple[str, float] | None = None  # (holder + renewTime, monotonic time first seen)
        if not self.renew_deadline:
            self.renew_deadline = self.duration * 2 / 3
        if not 0 < self.renew < self.renew_deadline < self.duration:
            raise ValueError(f"need 0 < renew ({self.renew}) < renew deadline ({self.renew_deadline}) < lease "
                             f"duration ({self.duration})")  # fmt: skip
        self._valid_until = 0.0  # monotonic time until which this replica may act as the leader

    def leading(self) -> bool:
        return time.monotonic() < self._valid_until

    def check(self) -> None:
        """Raise LeadershipLost unless this replica holds the Lease within its renew deadline."""
        if not self.leading():
            raise LeadershipLost(
                f"{self.identity} is past its renew deadline on the lease {self.namespace}/{self.name}"
            )

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        while not await self._try():
            await asyncio.sleep(self.retry)
        log.info("%s became leader (lease %s/%s)", self.identity, self.namespace, self.name)

    async def hold(self) -> None:
        """Renew until cancelled; raises LeadershipLost once the renew deadline passes without a renewal."""
        while True:
            await asyncio.sleep(max(0.0, min(self.renew, self._valid_until - time.monotonic())))
            self.check()  # e.g. woken from a pause: another replica may lead already
            try:
                ok = await asyncio.wait_for(self._try(), max(0.1, self._valid_until - time.monotonic()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lease renewal failed: %r", exc)
                ok = False
            if not ok:
                self.check()

    async def release(self) -> None:
        self._valid_until = 0.0
        lease = await self.kube.get(LEASE, self.namespace, self.name)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        lease["spec"]["holderIdentity"] = ""
        try:
            await self.kube.request("PUT", LEASE.path(self.namespace, self.name), body=lease)
        except ApiException as exc:
            log.warning("could not release the lease: %s", exc.reason)

    async def _try(self) -> bool:
        """One attempt to take or renew the Lease; on success the renew deadline counts from its start."""
        started = time.monotonic()
        if await self._attempt():
            self._valid_until = started + self.renew_deadline
            return True
        return False

    async def _attempt(self) -> bool:
        lease = await self.kube.get(LEASE, self.namespace, self.name)
        now = _micro_time()
        if lease is None:
            body: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, now, 0),
            }
            try:
                await self.kube.create(LEASE, self.namespace, body)
            except ApiException as exc:
                if exc.status == 409:
                    return False
                raise
            return True
        spec: Obj = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        if holder and holder != self.identity and not self._expired(spec):
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        acquired = str(spec.get("acquireTime") or now) if holder == self.identity else now
        lease["spec"] = self._spec(acquired, now, transitions)
        try:
            await self.kube.request("PUT", LEASE.path(self.namespace, self.name), body=lease)
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote it first
                return False
            raise
        return True

    def _expired(self, spec: Obj) -> bool:
        marker = f"{spec.get('holderIdentity')}@{spec.get('renewTime')}"
        duration = float(spec.get("leaseDurationSeconds") or self.duration)
        if self._seen is None or self._seen[0] != marker:
            self._seen = (marker, time.monotonic())
            return False
        return time.monotonic() - self._seen[1] >= duration

    def _spec(self, acquired: str, renewed: str, transitions: int) -> Obj:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.duration)),
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }
