"""Registrations as Leases (the Kubernetes store's shared rows): the row survives the round trip, and a Lease that no
registry wrote is refused with its name."""

from __future__ import annotations

import pytest

from k8stars.registry.model import AdapterRow, ServerKey, ServerRow
from k8stars.registry.store.leases import ROW_ANNOTATION, lease_name, row_from_lease, row_to_lease


def test_row_round_trip() -> None:
    row = ServerRow(
        ServerKey("Ext", "Gateway", "127.0.0.77"), present_state="activating", enable_set=True, set_name="s",
        set_area="a", set_group="1", grid_flag="NO_FLOW", metrics_port=9100, last_heartbeat=1764086400.123456,
        adapters=[AdapterRow("Ext.Gateway.HttpObjAdapter", "Ext.Gateway.HttpObj", "tcp -h 127.0.0.77 -p 1 -t 60000")],
    )  # fmt: skip
    lease = row_to_lease(row, "tars")
    assert lease["metadata"]["name"] == lease_name(row.key) and len(lease["metadata"]["name"]) <= 63
    assert lease["spec"] == {"holderIdentity": "Ext.Gateway@127.0.0.77", "renewTime": "2025-11-25T16:00:00.123456Z"}
    back = row_from_lease(lease)
    assert back == row and back.last_heartbeat == pytest.approx(row.last_heartbeat)


def test_names_differ_by_node_and_server() -> None:
    names = {lease_name(ServerKey(a, s, n)) for a in "AB" for s in "xy" for n in ("127.0.0.1", "127.0.0.2")}
    assert len(names) == 8


def test_foreign_lease_is_refused_clearly() -> None:
    lease = {"metadata": {"name": "kube-scheduler", "annotations": {ROW_ANNOTATION: "{"}}, "spec": {}}
    with pytest.raises(ValueError, match="Lease kube-scheduler: not a registration"):
        row_from_lease(lease)
