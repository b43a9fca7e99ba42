"""The web console's pages with many servers, and the size of what a browser loads (docs/web.md).

    python -m bench.web [--servers 200] [--samples 20] [--kubeconfig FILE] [--json]

Starts a control plane of its own (unless --kubeconfig names a running one), installs the CRDs, creates `--servers`
TServers over 20 apps in a fresh namespace and runs `k8stars web` in this process. A logged-in client then fetches
each page `--samples` times: the time from the request to the last byte of the answer (the console reads the
Kubernetes objects on every request and renders on the server; the browser adds only its own layout). Goals
(issue 17): every page under 300 ms with 200 servers; under 150 KB of JavaScript.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.operator import _pct, _tserver, bench_namespace
from k8stars.kube.accounts import hash_password
from k8stars.kube.resources import TACCOUNT, TSERVER
from k8stars.web.accounts import object_name
from k8stars.web.service import WebOptions, WebService

STATIC = Path(__file__).resolve().parents[1] / "k8stars" / "web" / "static"
PAGES = ("/", "/?q=Server1", "/servers/app3-server3", "/servers/app3-server3/edit", "/servers/app3-server3/configs",
         "/servers/app3-server3/monitoring", "/nodes", "/accounts")  # fmt: skip


def _server(i: int) -> dict[str, Any]:
    doc = _tserver(i, release=True)
    app, server = f"App{i % 20}", f"Server{i}"
    doc["metadata"] = {"name": f"{app.lower()}-{server.lower()}"}
    doc["spec"]["app"], doc["spec"]["server"] = app, server
    doc["spec"]["k8s"].pop("mounts", None)
    return doc


async def _login(http: aiohttp.ClientSession, base: str) -> None:
    async with http.get(f"{base}/login") as r:
        csrf = re.search(r'name="_csrf" value="([^"]+)"', await r.text())
    assert csrf, "no CSRF token on the login page"
    form = {"_csrf": csrf[1], "username": "admin", "password": "admin-pass"}
    async with http.post(f"{base}/login", data=form) as r:
        assert r.status == 200 and "/login" not in str(r.url), f"login failed: {r.status} {r.url}"


async def _measure(base: str, samples: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _login(http, base)
        for path in PAGES:
            times, size = [], 0
            for _ in range(samples + 1):  # the first warms the connection
                t0 = time.perf_counter()
                async with http.get(base + path) as r:
                    body = await r.read()
                    assert r.status == 200, f"{path}: {r.status}"
                times.append(time.perf_counter() - t0)
                size = len(body)
            times = times[1:]
            out[path] = {"p50_ms": round(statistics.median(times) * 1000, 1),
                         "p95_ms": round(_pct(times, 0.95) * 1000, 1), "html_kb": round(size / 1024, 1)}  # fmt: skip
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_namespace(args.kubeconfig) as (kube, namespace, kubeconfig):
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                await kube.create(TSERVER, namespace, _server(i))

        await asyncio.gather(*(one(i) for i in range(args.servers)))
        account = {"apiVersion": TACCOUNT.api_version, "kind": "TAccount",
                   "metadata": {"name": object_name("admin")},
                   "spec": {"username": "admin", "authorization": [{"role": "admin", "flag": "*"}],
                            "authentication": {"bcryptPassword": hash_password("admin-pass"),
                                               "activated": True}}}  # fmt: skip
        await kube.create(TACCOUNT, namespace, account)
        web = WebService(WebOptions(namespace=namespace, kubeconfig=kubeconfig, port=0))
        await web.start()
        try:
            pages = await _measure(f"http://127.0.0.1:{web.port}", args.samples)
        finally:
            await web.stop()
    js = sum(p.stat().st_size for p in STATIC.glob("*.js"))
    css = sum(p.stat().st_size for p in STATIC.glob("*.css"))
    return {"servers": args.servers, "samples": args.samples, "pages": pages, "js_kb": round(js / 1024, 1),
            "css_kb": round(css / 1024, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"| page ({result['servers']} servers, {result['samples']} samples) | p50 ms | p95 ms | HTML KB |")
    print("|---|---|---|---|")
    for path, m in result["pages"].items():
        print(f"| `{path}` | {m['p50_ms']} | {m['p95_ms']} | {m['html_kb']} |")
    print(f"JavaScript {result['js_kb']} KB (goal < 150 KB), CSS {result['css_kb']} KB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
