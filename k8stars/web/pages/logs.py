"""A server's logs: each pod's log from the Kubernetes API (``pods/log``, the last lines, the previous container's
with ``previous``), and the remote log files the log service wrote for the server (``k8stars log --http-port``),
listed and tailed (sending the bearer token of ``--log-token-file``, when given). Names from the URL are only
passed on: the pod must be one of the server's, the file name is checked again by the log service, which opens
nothing outside its directory."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
from aiohttp import web

from k8stars.kube.client import ApiException, Obj
from k8stars.kube.resources import POD

from ..app import api_message
from ..keys import LOG_TOKEN, LOG_URL
from ..render import page
from .common import kube_of, server_of
from .server import selector

TAIL_LINES = 500
LIMIT_BYTES = 512 * 1024
FILE_BYTES = 256 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=10)


async def pod_log(request: web.Request, pod: Obj, previous: bool) -> tuple[str, str]:
    """(the log, why there is none)."""
    kube, ns = kube_of(request)
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    query: dict[str, str | int | bool] = {"tailLines": TAIL_LINES, "limitBytes": LIMIT_BYTES, "previous": previous,
                                          "container": str(containers[0].get("name", ""))}  # fmt: skip
    try:
        return await kube.text(POD.path(ns, pod["metadata"]["name"], "log"), query), ""
    except ApiException as e:  # no container yet, no previous one, a node that serves no logs
        return "", f"{e.status} {e.reason}: {api_message(e) or 'no log'}"


async def remote(request: web.Request, app: str, server: str, file: str, division: str
                 ) -> tuple[list[dict[str, object]], str, str]:  # fmt: skip
    """(the server's files, the tail of ``file`` in its own directory or the set directory ``division``, why not)."""
    base = request.app[LOG_URL]
    if not base:
        return [], "", "the console was started without --log-url: remote log files are not shown"
    url = f"{base}/api/logs/{quote(app, safe='')}/{quote(server, safe='')}"
    token = request.app[LOG_TOKEN]
    try:
        headers = token.headers() if token else {}
    except (OSError, ValueError) as e:  # the mounted Secret went away or is empty: say so, ask nothing
        return [], "", str(e)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT, headers=headers) as http:
            async with http.get(url) as r:
                listing = await r.json()
                if r.status == 401:  # a service closed by --http-token-file
                    return [], "", f"the log service refused: {listing.get('error')} (k8stars web --log-token-file)"
                if r.status != 200:
                    return [], "", str(listing.get("error"))
            text = ""
            if file:
                params = {"bytes": str(FILE_BYTES), "set": division}
                async with http.get(f"{url}/{quote(file, safe='')}", params=params) as r:
                    if r.status != 200:
                        return listing["files"], "", str((await r.json()).get("error"))
                    text = await r.text(errors="replace")
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        return [], "", f"the log service at {base} did not answer: {e or type(e).__name__}"
    return list(listing.get("files") or []), text, ""


async def logs(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, "view")
    kube, ns = kube_of(request)
    q = request.query
    pods = sorted((await kube.list(POD, ns, selector=selector(app, server))).get("items") or [],
                  key=lambda p: str(p["metadata"]["name"]))  # fmt: skip
    chosen = next((p for p in pods if p["metadata"]["name"] == q.get("pod")), None)
    log, log_error = "", ""
    if q.get("pod") and chosen is None:
        log_error = f"{q['pod']} is not a pod of {app}.{server}"
    elif chosen is not None:  # one of the server's pods, by its labels
        log, log_error = await pod_log(request, chosen, q.get("previous") == "1")
    files, text, files_error = await remote(request, app, server, q.get("file", ""), q.get("set", ""))
    return page(request, "logs.html", title=f"{app}.{server} logs", app=app, server=server,
                name=tserver["metadata"]["name"], pods=[p["metadata"]["name"] for p in pods],
                pod=chosen["metadata"]["name"] if chosen else "", previous=q.get("previous") == "1", log=log,
                log_error=log_error, files=files, file=q.get("file", ""), set=q.get("set", ""), text=text,
                files_error=files_error)  # fmt: skip


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}/logs", logs)
