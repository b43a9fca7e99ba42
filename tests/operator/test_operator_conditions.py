"""The TServer's Ready condition as a pure function of the TServer, its StatefulSet and its pods (the pod states are
the ones kubelet and the registry write; tests/pods/test_pods_faults.py shows them on real pods): the first problem
wins, kubelet's alternating pull reasons give one reason, back-off delays never reach the message (so the status is
not rewritten at each retry), and lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from typing import Any

from k8stars.operator.conditions import conditions, ready_condition

RELEASE = {"id": "v2", "image": "registry.local/test/test.echoserver:v2"}


def _ts(replicas: int = 2, release: dict[str, str] | None = RELEASE, status: Any = None) -> dict[str, Any]:
    spec = {"app": "Test", "server": "EchoServer", "k8s": {"replicas": replicas}}
    if release is not None:
        spec["release"] = release
    return {"spec": spec, "status": status or {}}


def _pod(name: str, release: str = "v2", active: bool = True, waiting: dict[str, str] | None = None,
         last_exit: int | None = None) -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {"name": "test-echoserver", "image": f"registry.local/x:{release}", "ready": active,
                                 "restartCount": 0 if last_exit is None else 3,
                                 "state": {"waiting": waiting} if waiting else {"running": {}}}  # fmt: skip
    if last_exit is not None:
        container["lastState"] = {"terminated": {"exitCode": last_exit}}
    gate = {"type": "tars.io/active", "status": "True" if active else "False",
            "reason": "Active" if active else "Activating"}  # fmt: skip
    return {"metadata": {"name": name, "labels": {"tars.io/ServerID": release}},
            "status": {"phase": "Running", "conditions": [gate], "containerStatuses": [container]}}  # fmt: skip


STS = {"metadata": {"name": "test-echoserver"}, "status": {"replicas": 2}}


def test_active_and_progress() -> None:
    assert ready_condition(_ts(), STS, [_pod("s-0"), _pod("s-1")], True) == ("True", "Active",
                                                                             "2 pods of release v2 active")  # fmt: skip
    assert ready_condition(_ts(), STS, [_pod("s-0", "v1"), _pod("s-1")], True)[1:] == (
        "Updating",
        "1 of 2 pods run release v2",
    )
    assert ready_condition(_ts(), STS, [_pod("s-0"), _pod("s-1", active=False)], True)[1] == "Activating"
    assert ready_condition(_ts(release=None), None, [], True)[1] == "NoRelease"


def test_what_is_wrong_names_the_pod() -> None:
    pull = {"reason": "ErrImagePull", "message": "failed to pull: not found"}
    backoff = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
    first = ready_condition(_ts(), STS, [_pod("s-0", "v1"), _pod("s-1", active=False, waiting=pull)], True)
    then = ready_condition(_ts(), STS, [_pod("s-0", "v1"), _pod("s-1", active=False, waiting=backoff)], True)
    assert first[:2] == then[:2] == ("False", "ImagePullBackOff")
    assert "pod s-1: image registry.local/x:v2 cannot be pulled: failed to pull: not found" == first[2]
    crash = {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
    reason, message = ready_condition(_ts(), STS, [_pod("s-1", active=False, waiting=crash, last_exit=1)], True)[1:]
    assert (reason, message) == ("CrashLoopBackOff", "pod s-1: container test-echoserver keeps exiting (exit code 1)")
    inactive = _pod("s-1", active=False)
    inactive["status"]["conditions"][0]["reason"] = "Inactive"
    assert ready_condition(_ts(), STS, [_pod("s-0"), inactive], True)[1] == "ServerInactive"


def test_transition_time_moves_only_when_the_status_flips() -> None:
    (first,) = conditions(_ts(), STS, [_pod("s-0"), _pod("s-1", active=False)], True)
    earlier = {**first, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    (same,) = conditions(_ts(status={"conditions": [earlier]}), STS, [_pod("s-0", "v1"), _pod("s-1")], True)
    assert (same["status"], same["reason"], same["lastTransitionTime"]) == ("False", "Updating", "2026-01-01T00:00:00Z")
    (flipped,) = conditions(_ts(status={"conditions": [earlier]}), STS, [_pod("s-0"), _pod("s-1")], True)
    assert flipped["status"] == "True" and flipped["lastTransitionTime"] != "2026-01-01T00:00:00Z"
