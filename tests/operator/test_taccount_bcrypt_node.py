"""TAccount hashes as a Node console checks them (issue 20, item 3): K8SFramework's webhook stores bcrypt of the hex
SHA-1 of the password in the `$2a$` form, and TarsWeb's Node bcrypt refuses any other revision ("Invalid salt
revision"). A TAccount created or re-passworded through the apiserver (our mutating webhook) verifies with
bcrypt-nodejs — a pure-JS implementation that accepts `$2a$` only — from the Node peers' npm install; our own check
accepts both `$2a$` and `$2b$` (hashes written by other tools)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator

import pytest
from operator_helpers import resource_of, serving_webhooks

from k8stars.kube.accounts import check_password, hash_password
from k8stars.kube.client import Kube, Obj
from k8stars.testing import peers
from k8stars.testing.cluster import Cluster

bcrypt = pytest.importorskip("bcrypt")

TACCOUNT = resource_of("TAccount")


@pytest.fixture
async def webhooks(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[str]:
    async with serving_webhooks(k8s_cluster, kube, namespace) as url:
        yield url


def node_check(pairs: list[tuple[str, str]]) -> list[Obj]:
    """bcrypt-nodejs's verdict on each (password, hash): {ok: bool} or {error: "..."}."""
    proc = subprocess.run(peers.node_script("bcrypt_check.js"), input=json.dumps([{"password": p, "hash": h}
                          for p, h in pairs]), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results: list[Obj] = json.loads(proc.stdout)
    return results


def test_node_bcrypt_accepts_only_2a() -> None:
    """The independent check is a strict one: the same hash with the `$2b$` revision is refused."""
    hashed = hash_password("s3cret-pass")
    as_2b = "$2b$" + hashed[4:]
    assert hashed.startswith("$2a$")
    assert node_check([("s3cret-pass", hashed), ("wrong-pass", hashed), ("s3cret-pass", as_2b)]) == [
        {"ok": True},
        {"ok": False},
        {"error": "Invalid salt revision"},
    ]
    assert check_password("s3cret-pass", hashed) and check_password("s3cret-pass", as_2b)  # ours takes both
    written_2b = bcrypt.hashpw(b"8cb2237d0679ca88db6464eac60da96345513964", bcrypt.gensalt(rounds=4)).decode()
    assert written_2b.startswith("$2b$") and check_password("12345", written_2b)  # sha1("12345")
    assert not check_password("12345", "$2a$10$not-a-hash")


async def test_taccount_through_the_apiserver_verifies_in_node(kube: Kube, namespace: str, webhooks: str) -> None:
    account: Obj = {
        "apiVersion": TACCOUNT.api_version,
        "kind": "TAccount",
        "metadata": {"name": "21232f297a57a5a743894a0e4a801fc3"},  # md5("admin"), K8SFramework's naming
        "spec": {
            "username": "admin",
            "authentication": {"password": "s3cret-pass", "activated": True},
            "authorization": [{"role": "admin", "flag": "*"}],
        },
    }
    stored = await kube.create(TACCOUNT, namespace, account)
    first = stored["spec"]["authentication"]["bcryptPassword"]
    changed = await kube.merge_patch(TACCOUNT, namespace, account["metadata"]["name"],
                                     {"spec": {"authentication": {"password": "n3w-Pass!"}}})  # fmt: skip
    second = changed["spec"]["authentication"]["bcryptPassword"]
    assert first.startswith("$2a$") and second.startswith("$2a$") and len(first) == len(second) == 60
    assert node_check([("s3cret-pass", first), ("n3w-Pass!", second), ("s3cret-pass", second)]) == [
        {"ok": True},
        {"ok": True},
        {"ok": False},
    ]
