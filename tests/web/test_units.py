"""The console's pure parts: roles and scopes, the signed session, the tree, config object names."""

from __future__ import annotations

import time

import pytest

from k8stars.web.pages.configs import object_name
from k8stars.web.pages.events import of_server
from k8stars.web.pages.tree import build_tree
from k8stars.web.roles import Forbidden, User, covers
from k8stars.web.session import Session, Signer


def user(*grants: tuple[str, str]) -> User:
    return User.of({"spec": {"username": "u", "authorization": [{"role": r, "flag": f} for r, f in grants]}})


def test_scopes() -> None:
    assert covers("*", "A", "S") and covers("", "A", "") and covers("A", "A", "S") and covers("A", "A", "")
    assert covers("A.S", "A", "S") and not covers("A.S", "A", "T") and not covers("A.S", "A", "")
    assert not covers("B", "A", "S") and not covers("AB", "A", "S") and covers("A.*", "A", "T")


def test_roles_per_action() -> None:
    dev, ops, admin = user(("developer", "A")), user(("operator", "A.S"), ("developer", "A")), user(("admin", "*"))
    assert dev.can("config", "A", "S") and not dev.can("scale", "A", "S") and not dev.can("view", "B", "S")
    assert ops.can("publish", "A", "S") and not ops.can("publish", "A", "T") and ops.can("view", "A", "T")
    assert admin.is_admin and not ops.is_admin and not user(("admin", "A")).is_admin  # accounts: admin everywhere
    assert user(("bogus", "*")).rank("A", "S") == 0
    with pytest.raises(Forbidden, match=r"operator role for A\.T"):
        ops.need("scale", "A", "T")


def test_session_cookie_is_signed_and_expires() -> None:
    signer = Signer(b"k" * 32)
    s = Session(user="admin", pw="fp")
    cookie = signer.dump(s)
    loaded = signer.load(cookie)
    assert loaded is not None and loaded.user == "admin" and loaded.csrf == s.csrf
    payload, mac = cookie.rsplit(".", 1)
    assert signer.load(payload[:-2] + "AA." + mac) is None  # tampered
    assert Signer(b"x" * 32).load(cookie) is None  # another key
    assert signer.load("garbage") is None and signer.load(None) is None
    old = Session(user="admin", issued=time.time() - 13 * 3600)
    assert signer.load(signer.dump(old)) is None
    with pytest.raises(ValueError):
        Signer(b"short")


def test_tree_order_and_search() -> None:
    ttree = {"businesses": [{"name": "B1", "show": "One", "weight": 1}, {"name": "B5", "show": "Five", "weight": 5}],
             "apps": [{"name": "A", "businessRef": "B1"}, {"name": "C", "businessRef": "B5"},
                      {"name": "Empty", "businessRef": "B1"}]}  # fmt: skip
    servers = [{"spec": {"app": a, "server": s}} for a, s in (("A", "X"), ("C", "Y"), ("Lone", "Z"))]
    tree = build_tree(ttree, servers, "")
    assert [b.show for b in tree] == ["Five", "One", "(no business)"]
    assert [a.name for a in tree[1].apps] == ["A", "Empty"]
    found = build_tree(ttree, servers, "a.x")
    assert [(b.show, [a.name for a in b.apps]) for b in found] == [("One", ["A"])]


def test_config_names_and_event_filter() -> None:
    assert object_name("Test", "Hello", "my_app.conf", "m", "2026") == "test-hello-my-app.conf-m-2026"
    events = [{"involvedObject": {"name": n}, "lastTimestamp": t} for n, t in
              (("s-0", "1"), ("s-12", "3"), ("s", "2"), ("s-x-0", "4"), ("other-0", "5"))]  # fmt: skip
    assert [e["involvedObject"]["name"] for e in of_server(events, "s")] == ["s-12", "s", "s-0"]


def test_throttle() -> None:
    from k8stars.web.throttle import Throttle

    t = Throttle(limit=3, window=60, capacity=2)
    for _ in range(3):
        assert not t.blocked("a")
        t.failed("a")
    assert t.blocked("a") and not t.blocked("b")
    t.succeeded("a")
    assert not t.blocked("a")
    for name in ("x", "y", "z"):
        t.failed(name)
    assert len(t._failures) == 2  # bounded
