"""Pure pieces of the settings form's host and volume part: which mounts the form shows, the order a save keeps, and
a form without the section leaving it alone."""

from __future__ import annotations

import pytest

from k8stars.web.pages.edit import settings_patch, spec_hash
from k8stars.web.pages.edit_k8s import host_patch, mount_row, mounts_of
from k8stars.web.pages.forms import Invalid

CONF = {"name": "conf", "mountPath": "/c", "readOnly": True,
        "source": {"configMap": {"name": "cm", "defaultMode": 420, "optional": True}}}  # fmt: skip
LOGS = {"name": "logs", "mountPath": "/l", "subPathExpr": "$(POD_NAME)", "source": {"emptyDir": {}}}
PVC = {"name": "data", "mountPath": "/d", "source": {"persistentVolumeClaim": {"claimName": "c"}}}


def test_mount_rows_and_kept_mounts() -> None:
    assert mount_row(CONF) == {"name": "conf", "mountPath": "/c", "readOnly": True, "subPath": "",
                               "source": "configMap", "from": "cm", "type": ""}  # fmt: skip
    assert mount_row(LOGS) is None and mount_row(PVC) is None  # subPathExpr, another source: kept
    assert mount_row({**CONF, "source": {"configMap": {"name": "cm", "items": [{"key": "a", "path": "b"}]}}}) is None
    assert mount_row({**CONF, "source": {"secret": {"secretName": "s", "optional": False}}}) is None
    # the form's row for conf and a new secret; the kept ones keep their places, a removed row goes
    form = {"m0.name": "conf", "m0.mountPath": "/c2", "m0.source": "configMap", "m0.from": "cm",
            "m1.name": "certs", "m1.mountPath": "/s", "m1.source": "secret", "m1.from": "s"}  # fmt: skip
    got = mounts_of(form, [LOGS, CONF, PVC])
    assert [m["name"] for m in got] == ["logs", "conf", "data", "certs"]
    assert got[1] == {"name": "conf", "mountPath": "/c2", "readOnly": False, "source": {"configMap": {"name": "cm"}}}
    assert got[3]["source"] == {"secret": {"secretName": "s"}}
    assert mounts_of({**form, "m0.remove": "on"}, [LOGS, CONF, PVC])[1] == PVC
    # a row of a kept mount's name replaces it
    assert mounts_of({"m0.name": "logs", "m0.mountPath": "/x", "m0.source": "emptyDir"}, [LOGS])[0]["mountPath"] == "/x"
    with pytest.raises(Invalid, match="certs: a Secret name is required"):
        mounts_of({**form, "m1.from": ""}, [])
    with pytest.raises(Invalid, match="the source is one of"):
        mounts_of({**form, "m1.source": "nfs"}, [])


def test_host_patch_only_what_changed() -> None:
    k8s = {"hostNetwork": True, "mounts": [CONF], "nodeSelector": []}
    assert host_patch(k8s, {"replicas": "1"}) == {}  # no section in the form: left alone
    same = {"k8sHost": "1", "hostNetwork": "on", "m0.name": "conf", "m0.mountPath": "/c", "m0.readOnly": "on",
            "m0.source": "configMap", "m0.from": "cm"}  # fmt: skip
    assert host_patch(k8s, same) == {}
    changed = {**same, "hostNetwork": "", "h0.nameRef": "HelloObj", "h0.port": "9000", "n0.key": "disk",
               "n0.operator": "Exists"}  # fmt: skip
    assert host_patch(k8s, changed) == {"hostNetwork": False, "hostPorts": [{"nameRef": "HelloObj", "port": 9000}],
                                        "nodeSelector": [{"key": "disk", "operator": "Exists"}]}  # fmt: skip
    with pytest.raises(Invalid, match="host port of HelloObj: a port is required"):
        host_patch(k8s, {**changed, "h0.port": ""})


def test_stale_only_when_the_spec_changed() -> None:
    ts = {"metadata": {"resourceVersion": "9"}, "spec": {"k8s": {}, "normal": {"ports": []}}}
    form = {"replicas": "1", "resourceVersion": "7"}
    assert settings_patch(ts, {**form, "specHash": spec_hash(ts)})["metadata"] == {"resourceVersion": "9"}
    assert settings_patch(ts, {**form, "specHash": "other"})["metadata"] == {"resourceVersion": "7"}
