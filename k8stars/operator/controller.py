"""The k8stars operator: level-based, idempotent reconciliation of TServers.

Informers (list + watch, in-memory caches) feed a keyed work queue; a key is a TServer (namespace, name), whatever
changed (the TServer, its StatefulSet/DaemonSet/Service/TEndpoint, one of its pods). A reconcile reads only the
caches, renders the desired objects (k8stars.operator.translate) and writes only what differs:

- StatefulSet/DaemonSet, Service, TEndpoint: server-side apply by the field manager `k8stars-operator`, skipped
  when the object carries the hash of the same rendering (so a restarted operator writes nothing, and nothing rolls
  unless the pod template really changed);
- TEndpoint status (pods) and TServer status: server-side apply of the status subresource when it differs.

No write carries a resourceVersion, so none fails with "the object has been modified"; a failed reconcile is
retried with backoff. Owned objects carry an ownerReference to the TServer: deleting it garbage-collects them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from k8stars.kube import meta
from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.informer import WatchCache, key_of
from k8stars.kube.resources import (
    CONFIGMAP,
    DAEMONSET,
    PERSISTENTVOLUMECLAIM,
    POD,
    SERVICE,
    STATEFULSET,
    TCONFIG,
    TENDPOINT,
    TEXITEDRECORD,
    TFRAMEWORKCONFIG,
    TIMAGE,
    TSERVER,
    TTEMPLATE,
    TTREE,
)

from . import bookkeeping, conditions, drift, records, taccount, tconfig, translate
from .workqueue import Key, WorkQueue

log = logging.getLogger("k8stars.operator")

config_group = tconfig.group_of


@dataclass
class Stats:
    reconciles: int = 0
    writes: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def wrote(self, what: str) -> None:
        self.writes[what] = self.writes.get(what, 0) + 1


class Operator:
    """Run with `await Operator(kube).run()`; `namespace=None` watches every namespace."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str | None = None,
        workers: int = 4,
        resync: float = 300.0,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.workers = workers
        self.resync = resync
        self.queue = WorkQueue()
        self.stats = Stats()
        self._failures: dict[Key, int] = {}
        owned = meta.SERVER_APP  # every object we own carries this label
        self.tservers = WatchCache(kube, TSERVER, namespace, None, self._on_tserver)
        self.statefulsets = WatchCache(kube, STATEFULSET, namespace, owned, self._on_owned)
        self.daemonsets = WatchCache(kube, DAEMONSET, namespace, owned, self._on_owned)
        self.services = WatchCache(kube, SERVICE, namespace, owned, self._on_owned)
        self.configmaps = WatchCache(kube, CONFIGMAP, namespace, owned, self._on_owned)
        self.endpoints = WatchCache(kube, TENDPOINT, namespace, owned, self._on_owned)
        self.pods = WatchCache(kube, POD, namespace, owned, self._on_pod)
        self.tconfigs = WatchCache(kube, TCONFIG, namespace, None, self._on_tconfig)
        self.informers = [self.tservers, self.statefulsets, self.daemonsets, self.services, self.endpoints, self.pods]
        self.informers.append(self.configmaps)
        # every TServer has its TExitedRecord from its creation, as K8SFramework's console expects (its pod-history
        # page fails on a missing one); unfiltered: a record written by hand or by K8SFramework may lack our labels
        self.exited_records = WatchCache(kube, TEXITEDRECORD, namespace, None, self._on_owned)
        self.informers.append(self.exited_records)
        self.ttemplates = WatchCache(kube, TTEMPLATE, namespace, None, self._on_ttemplate)
        self._template_errors: dict[Key, str] = {}  # TServer -> why its template cannot be resolved
        self.informers.append(self.ttemplates)
        self.informers.append(self.tconfigs)
        # TFrameworkConfig tars-framework: recordLimit.tconfigHistory bounds each TConfig group's history.
        self.frameworks = WatchCache(kube, TFRAMEWORKCONFIG, namespace, None, self._on_framework)
        self.informers.append(self.frameworks)
        self.accounts = taccount.TokenExpiry(kube, namespace, self.stats.wrote)  # K8SFramework's token expiry
        self.informers.append(self.accounts.cache)
        self.config_queue = WorkQueue()  # keys: (namespace, "app/server/configName/podSeq")
        self.config_groups = tconfig.GroupReconciler(kube)
        self.pods_by_server: dict[Key, set[Key]] = {}
        self.exited: dict[Key, list[Obj]] = {}  # pods gone since the last reconcile, for TExitedRecord
        self._tree_apps: set[Key] = set()  # (namespace, app) known to be in tars-tree
        self._tree_lock = asyncio.Lock()  # one tars-tree edit at a time (this operator's workers never race)
        self._image_releases: dict[Key, str] = {}  # TServer → release id known to be in its TImage
        self.ready = asyncio.Event()

    # --- event routing ----------------------------------------------------------------------------------------
    def _on_tconfig(self, obj: Obj, kind: str) -> None:
        if kind == "DELETED":
            self.config_groups.forget(obj)
        self.config_queue.add((obj["metadata"]["namespace"], config_group(obj)))

    def _on_framework(self, obj: Obj, kind: str) -> None:
        """A new history limit applies to every group of the namespace at once."""
        namespace = obj["metadata"]["namespace"]
        if obj["metadata"]["name"] != tconfig.FRAMEWORK_CONFIG:
            return
        for group in {config_group(c) for (ns, _), c in list(self.tconfigs.store.items()) if ns == namespace}:
            self.config_queue.add((namespace, group))

    async def _config_worker(self) -> None:
        while True:
            key = await self.config_queue.get()
            try:
                await self.reconcile_configs(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.errors += 1
                log.warning("TConfig group %s/%s failed (%s), retrying", *key, exc)
                self.config_queue.add_after(key, 1.0)
            finally:
                self.config_queue.done(key)

    async def reconcile_configs(self, key: Key) -> None:
        """One TConfig group to the life-cycle rules of k8stars.operator.tconfig: one activated version (the newest
        activation), the history of a deleted activated version deleted, at most recordLimit.tconfigHistory
        deactivated versions kept."""
        namespace, group = key
        members = [
            c for (ns, _), c in list(self.tconfigs.store.items()) if ns == namespace and config_group(c) == group
        ]
        limit = tconfig.history_limit(self.frameworks.get((namespace, tconfig.FRAMEWORK_CONFIG)))
        for step in await self.config_groups.reconcile(namespace, members, limit):
            self.stats.wrote(f"tconfig-{step.action}")

    def _on_tserver(self, obj: Obj, kind: str) -> None:
        self.queue.add(key_of(obj))

    def templates(self, namespace: str) -> dict[str, Obj]:
        return {name: tt for (ns, name), tt in self.ttemplates.store.items() if ns == namespace}

    def _on_ttemplate(self, obj: Obj, kind: str) -> None:
        """A template edit reaches every TServer whose chain holds it (their server-meta ConfigMaps change)."""
        namespace, name = key_of(obj)
        templates = self.templates(namespace)
        for key, ts in list(self.tservers.store.items()):
            wanted = str(((ts.get("spec") or {}).get("tars") or {}).get("template") or "")
            if key[0] != namespace or not wanted:
                continue
            try:
                chain = {str(t["metadata"]["name"]) for t in translate.template_chain(wanted, templates)}
            except translate.TemplateError:
                chain = {wanted}
            if name in chain:
                self.queue.add(key)

    def _server_template(self, ts: Obj, current: Obj | None) -> str:
        """The merged template; when it cannot be resolved the ConfigMap keeps what it had (pods still start with
        the last good template) and the reason is logged."""
        key = key_of(ts)
        try:
            text = translate.server_template(ts, self.templates(key[0]))
        except translate.TemplateError as e:
            if self._template_errors.get(key) != str(e):  # once per new reason, not on every reconcile
                log.warning("TServer %s/%s: %s; keeping the last template", *key, e)
            self._template_errors[key] = str(e)
            return str(((current or {}).get("data") or {}).get(translate.TEMPLATE_KEY) or "")
        self._template_errors.pop(key, None)
        return text

    def _on_owned(self, obj: Obj, kind: str) -> None:
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "TServer" and ref.get("controller"):
                self.queue.add((obj["metadata"]["namespace"], ref["name"]))

    def _on_pod(self, obj: Obj, kind: str) -> None:
        ns = obj["metadata"]["namespace"]
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("kind") in ("StatefulSet", "DaemonSet") and ref.get("controller"):
                server = (ns, str(ref["name"]))
                members = self.pods_by_server.setdefault(server, set())
                if kind == "DELETED":
                    members.discard(key_of(obj))
                    self.exited.setdefault(server, []).append(bookkeeping.exited_pod(obj))
                else:
                    members.add(key_of(obj))
                self.queue.add(server)

    def server_pods(self, key: Key) -> list[Obj]:
        found = []
        for pod_key in self.pods_by_server.get(key, ()):
            pod = self.pods.get(pod_key)
            if pod is not None:
                found.append(pod)
        return found

    # --- running ------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for informer in self.informers:
                group.create_task(informer.run(), name=f"informer-{informer.res.plural}")
            await asyncio.gather(*(i.synced.wait() for i in self.informers))
            log.info("caches synced: %d TServers, %d pods", len(self.tservers.store), len(self.pods.store))
            self.ready.set()
            for n in range(self.workers):
                group.create_task(self._worker(), name=f"worker-{n}")
            group.create_task(self._resync(), name="resync")
            group.create_task(self._config_worker(), name="tconfig-worker")
            group.create_task(self.accounts.run(), name="taccount-worker")

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            self._tree_apps.clear()
            self._image_releases.clear()
            for key in list(self.tservers.store):
                self.queue.add(key)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.errors += 1
                tries = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(0.1 * 2**tries, 30.0) * (0.8 + 0.4 * random.random())
                detail = exc.body if isinstance(exc, ApiException) else exc
                log.warning("reconcile %s/%s failed (%s), retry in %.1f s", *key, detail, delay)
                self.queue.add_after(key, delay)
            finally:
                self.queue.done(key)

    # --- reconcile ----------------------------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> None:
        self.stats.reconciles += 1
        ts = self.tservers.get(key)
        if ts is None or ts["metadata"].get("deletionTimestamp"):
            self.exited.pop(key, None)
            self._template_errors.pop(key, None)
            return  # owned objects are garbage-collected through their ownerReferences
        namespace, name = key
        daemon = bool(((ts.get("spec") or {}).get("k8s") or {}).get("daemonSet"))
        if translate.is_tars(ts):  # before the pods that mount it
            meta_map = self.configmaps.get((namespace, translate.server_meta_name(ts)))
            desired_map = translate.server_meta_configmap(ts, self._server_template(ts, meta_map))
            await self._ensure(CONFIGMAP, meta_map, desired_map, "configmap", root="f:data")
        sts = self.statefulsets.get(key)
        ds = self.daemonsets.get(key)
        if daemon:
            await self._ensure(DAEMONSET, ds, translate.daemonset(ts), "daemonset")
            if sts is not None and self._owned_by(sts, ts):
                await self.kube.delete(STATEFULSET, namespace, name)
                self.stats.wrote("statefulset-delete")
            svc = self.services.get(key)
            if svc is not None and self._owned_by(svc, ts):
                await self.kube.delete(SERVICE, namespace, name)
                self.stats.wrote("service-delete")
        else:
            await self._statefulset(ts, sts)
            if ds is not None and self._owned_by(ds, ts):
                await self.kube.delete(DAEMONSET, namespace, name)
                self.stats.wrote("daemonset-delete")
            await self._ensure(SERVICE, self.services.get(key), translate.service(ts), "service")
        await self._ensure(TENDPOINT, self.endpoints.get(key), bookkeeping.endpoint(ts), "tendpoint")
        await self._endpoint_status(key, ts)
        await self._tserver_status(key, ts, self.daemonsets.get(key) if daemon else self.statefulsets.get(key))
        await self._exited_record(key, ts)
        await self._tree_app(namespace, str(ts["spec"]["app"]))
        await self._image_release(key, ts)

    @staticmethod
    def _owned_by(obj: Obj, ts: Obj) -> bool:
        uid = ts["metadata"]["uid"]
        return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])

    async def _statefulset(self, ts: Obj, sts: Obj | None) -> None:
        desired = translate.statefulset(ts, sts)
        if sts is not None and sts["metadata"].get("deletionTimestamp"):
            return  # being rebuilt: its DELETED event queues the TServer again
        if sts is not None and translate.needs_rebuild(sts, desired):
            # Claim templates cannot change: delete it, orphaning its pods (they keep running), and create it anew
            # when the deletion is seen; the new one adopts the pods and rolls them onto the new template.
            namespace, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
            log.info("StatefulSet %s/%s: claim templates changed, rebuilding it (pods kept)", namespace, name)
            await self.kube.delete(STATEFULSET, namespace, name, propagation="Orphan")
            self.stats.wrote("statefulset-rebuild")
            removed = translate.removed_local_claims(sts, desired)
            if removed:  # as K8SFramework: the PVCs of a dropped tLocalVolume go (each once its pod lets it go)
                selector = translate.local_claims_selector(ts, removed)
                await self.kube.request(
                    "DELETE", PERSISTENTVOLUMECLAIM.path(namespace), query={"labelSelector": selector}
                )
                self.stats.wrote("local-claims-delete")
            return
        await self._ensure(STATEFULSET, sts, desired, "statefulset")

    async def _ensure(self, res: Resource, current: Obj | None, desired: Obj, what: str, root: str = "f:spec") -> None:
        namespace = desired["metadata"]["namespace"]
        if current is not None:
            others = drift.drifted(current, self.kube.field_manager, root)
            if others:  # edited by hand: take the fields back, then the apply below restores them
                log.info("%s %s/%s was changed by %s: restoring what the TServer says", res.kind, namespace,
                         desired["metadata"]["name"], ", ".join(sorted(set(others))))  # fmt: skip
                patch = drift.takeover_patch(current, self.kube.field_manager, root)
                await self.kube.json_patch(res, namespace, desired["metadata"]["name"], patch)
                self.stats.wrote(f"{what}-takeover")
            else:
                have = (current["metadata"].get("annotations") or {}).get(translate.HASH_ANNOTATION)
                want = desired["metadata"]["annotations"][translate.HASH_ANNOTATION]
                if have == want and self._replicas_match(current, desired):
                    return
        await self.kube.apply(res, namespace, desired)
        self.stats.wrote(what)
        log.info("applied %s %s/%s", res.kind, desired["metadata"]["namespace"], desired["metadata"]["name"])

    @staticmethod
    def _replicas_match(current: Obj, desired: Obj) -> bool:
        want = (desired.get("spec") or {}).get("replicas")
        return want is None or (current.get("spec") or {}).get("replicas") == want

    async def _endpoint_status(self, key: Key, ts: Obj) -> None:
        status = bookkeeping.endpoint_status(self.server_pods(key), translate.is_tars(ts))
        current = self.endpoints.get(key)
        if current is not None and current.get("status") == status:
            return
        body = {"apiVersion": meta.API_VERSION, "kind": "TEndpoint", "metadata": {"name": key[1]}, "status": status}
        await self.kube.apply(TENDPOINT, key[0], body, sub="status")
        self.stats.wrote("tendpoint-status")

    async def _tree_app(self, namespace: str, app: str) -> None:
        """Every app with a TServer is in the namespace's TTree `tars-tree` (businessRef "" until someone sets it)."""
        if (namespace, app) in self._tree_apps:
            return
        async with self._tree_lock:
            await self._tree_app_locked(namespace, app)

    async def _tree_app_locked(self, namespace: str, app: str) -> None:
        if (namespace, app) in self._tree_apps:
            return
        tree = await self.kube.get(TTREE, namespace, bookkeeping.TREE_NAME)
        if tree is None:
            await self.kube.create(TTREE, namespace, bookkeeping.tree(app))
            self.stats.wrote("ttree")
        elif app not in {a.get("name") for a in tree.get("apps") or []}:
            # A read-modify-write of one shared object: the resourceVersion makes a concurrent edit fail (409) and
            # this reconcile retry, instead of losing the other edit.
            tree["apps"] = [*(tree.get("apps") or []), bookkeeping.tree_app(app)]
            await self.kube.request("PUT", TTREE.path(namespace, bookkeeping.TREE_NAME), body=tree)
            self.stats.wrote("ttree")
        self._tree_apps.add((namespace, app))

    async def _image_release(self, key: Key, ts: Obj) -> None:
        """The TServer's release is recorded in the TImage of the same name (newest first, recordLimit.timageRelease
        kept)."""
        rel = translate.release(ts)
        if not rel.get("id") or not rel.get("image") or self._image_releases.get(key) == rel["id"]:
            return
        image = await self.kube.get(TIMAGE, key[0], key[1])
        if image is None:
            await self.kube.create(
                TIMAGE, key[0], bookkeeping.image_record(ts, [], self._limit(key[0], "timageRelease"))
            )
            self.stats.wrote("timage")
        elif rel["id"] not in {r.get("id") for r in image.get("releases") or []}:
            updated = bookkeeping.image_record(
                ts, list(image.get("releases") or []), self._limit(key[0], "timageRelease")
            )
            image["releases"] = updated["releases"]
            await self.kube.request("PUT", TIMAGE.path(key[0], key[1]), body=image)
            self.stats.wrote("timage")
        self._image_releases[key] = str(rel["id"])

    def _limit(self, namespace: str, field: str) -> int:
        return records.limit(self.frameworks.get((namespace, records.FRAMEWORK_CONFIG)), field)

    async def _exited_record(self, key: Key, ts: Obj) -> None:
        """The server's TExitedRecord: created with the TServer (no pods yet), then every pod that went away is put
        first (newest first, recordLimit.texitedPod kept), as K8SFramework's controller records them."""
        gone = self.exited.pop(key, [])
        if not gone:
            if self.exited_records.get(key) is None:
                await self._create_exited_record(key, ts)
            return
        try:
            current = await self.kube.get(TEXITEDRECORD, key[0], key[1])
            pods = list((current or {}).get("pods") or [])
            known = {p.get("uid") for p in pods}
            fresh = [p for p in reversed(gone) if p["uid"] not in known]
            limit = self._limit(key[0], "texitedPod")
            body = bookkeeping.exited_record(ts, [*fresh, *pods][:limit])
            await self.kube.apply(TEXITEDRECORD, key[0], body)
        except BaseException:
            self.exited.setdefault(key, [])[:0] = gone  # keep them for the retry
            raise
        self.stats.wrote("texitedrecord")

    async def _create_exited_record(self, key: Key, ts: Obj) -> None:
        try:
            await self.kube.create(TEXITEDRECORD, key[0], bookkeeping.exited_record(ts, []))
        except ApiException as exc:
            if exc.status != 409:  # 409: there already (the cache lags behind)
                raise
            return
        self.stats.wrote("texitedrecord")

    async def _tserver_status(self, key: Key, ts: Obj, workload: Obj | None) -> None:
        status = bookkeeping.tserver_status(ts, workload)
        status["conditions"] = conditions.conditions(ts, workload, self.server_pods(key), translate.is_tars(ts))
        if ts.get("status") == status:
            return
        body = {"apiVersion": meta.API_VERSION, "kind": "TServer", "metadata": {"name": key[1]}, "status": status}
        try:
            await self.kube.apply(TSERVER, key[0], body, sub="status")
        except ApiException as exc:
            if exc.status == 404:  # deleted meanwhile
                return
            raise
        self.stats.wrote("tserver-status")
