"""The last step of a pod's graceful deletion on kwok's fake nodes, taken as a kubelet takes it.

No kubelet confirms the deletion of a pod on a fake node, so a terminating pod would stay forever. kwok can end it
(a Stage with `delete: true`), but it deletes by name alone, and sometimes twice (two events of the terminating pod
played by two workers): under load the second DELETE removes the pod a StatefulSet has just recreated under the same
name, an exit no real node makes (seen in CI: an exited-pod record with one pod too many). A kubelet's final DELETE
carries the pod's uid as a precondition; this one does too, so it can only ever remove the pod it saw terminating.

Run by the launcher beside kwok: `python -m k8stars.testing.cluster.podreaper KUBECONFIG`.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from k8stars.kube.client import ApiException, Kube, Obj
from k8stars.kube.informer import WatchCache
from k8stars.kube.resources import NODE, POD

from ._components import KWOK_ANNOTATION

log = logging.getLogger("k8stars.podreaper")


class PodReaper:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.nodes = WatchCache(kube, NODE)
        self.pods = WatchCache(kube, POD, on_change=self._on_pod)
        self._deleting: dict[str, asyncio.Task[None]] = {}  # by pod uid

    def _fake_node(self, name: str) -> bool:
        node = self.nodes.get(("", name))
        annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
        return bool(annotations.get(KWOK_ANNOTATION[0]) == KWOK_ANNOTATION[1])

    def _on_pod(self, pod: Obj, kind: str) -> None:
        md = pod["metadata"]
        uid = str(md.get("uid", ""))
        if kind == "DELETED" or not md.get("deletionTimestamp") or uid in self._deleting:
            return
        if not self._fake_node(str((pod.get("spec") or {}).get("nodeName") or "")):
            return  # unscheduled pods go at once; a real node's kubelet ends its own pods
        task = asyncio.create_task(self._delete(str(md["namespace"]), str(md["name"]), uid))
        self._deleting[uid] = task
        task.add_done_callback(lambda _t: self._deleting.pop(uid, None))

    async def _delete(self, namespace: str, name: str, uid: str) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        for attempt in range(5):  # bounded: a pod still there after that is left to the next event of it
            try:
                await self.kube.request("DELETE", POD.path(namespace, name), body=body)
                log.info("pod %s/%s (%s) deleted", namespace, name, uid)
                return
            except ApiException as exc:
                if exc.status in (404, 409):  # gone already, or the name is another pod's now
                    log.info("pod %s/%s (%s) gone already: %s", namespace, name, uid, exc.status)
                    return
                log.warning("deleting pod %s/%s (%s): %s %s", namespace, name, uid, exc.status, exc.reason)
            except OSError as exc:
                log.warning("deleting pod %s/%s (%s): %r", namespace, name, uid, exc)
            await asyncio.sleep(0.2 * 2**attempt)

    async def run(self) -> None:
        nodes = asyncio.create_task(self.nodes.run())
        await self.nodes.synced.wait()
        await asyncio.gather(nodes, self.pods.run())


async def _main(kubeconfig: str) -> None:
    async with await Kube.connect(kubeconfig, field_manager="k8stars-podreaper") as kube:
        await PodReaper(kube).run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main(sys.argv[1]))
