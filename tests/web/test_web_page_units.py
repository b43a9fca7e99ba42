"""Pure pieces of the monitoring, settings and nodes pages: minutes, rows and rates, the SVG curve, merge patches,
the form's servants and env, node labels, and who may do what."""

from __future__ import annotations

import pytest

from k8stars.web.monitoring import Totals, minute_of, properties, sort_rows, sparkline, stat_series, total
from k8stars.web.pages.edit import Invalid, env_of, merged, servants_of, settings_patch
from k8stars.web.pages.nodes import node_row
from k8stars.web.roles import User


def test_minutes_rows_and_rates() -> None:
    assert (minute_of("0001"), minute_of("1006"), minute_of("2360")) == (0, 605, 1439)
    day = {"echo,1006": [90.0, 5.0, 5.0, 900.0], "ping,1006": [10.0, 0.0, 0.0, 5.0]}
    other = {"echo,0901": [50.0, 0.0, 0.0, 100.0], "gone,0901": [1.0, 0.0, 0.0, 1.0]}
    rows = {r.key: r for r in stat_series(day, other)}
    assert rows["echo"].day.calls == 100 and rows["echo"].change == 100.0
    assert rows["echo"].day.timeout_rate == 5.0 and rows["echo"].day.avg_ms == 9.0
    assert rows["ping"].change is None and rows["gone"].day.calls == 0 and rows["gone"].change == -100.0
    # today, at 09:30: the other day up to 09:30 only (10:06 is later), its curve whole
    echo = {r.key: r for r in stat_series(day, {"echo,0901": [50.0, 0, 0, 0], "echo,1006": [50.0, 0, 0, 0]}, 570)}[
        "echo"
    ]
    assert echo.other.calls == 50 and sum(t.calls for t in echo.other_minutes.values()) == 100
    assert Totals().timeout_rate is None  # no calls: no rate, not 0 %
    assert total(rows.values()).day.calls == 110
    assert [r.key for r in sort_rows(list(rows.values()), "change", True)] == ["echo", "gone", "ping"]
    assert sort_rows(list(rows.values()), "nope", True)[0].key == "echo"  # by calls
    props = properties({"queue,Max,1006": [7.0]}, {})
    assert (props[0].name, props[0].policy, props[0].peak, props[0].other_peak) == ("queue", "Max", 7.0, None)


def test_curve_is_numbers_only() -> None:
    svg = str(sparkline({0: 1.0, 1439: 3.0}, {}, bins=4))
    assert svg.count("<polyline") == 1 and 'class="day"' in svg and "<script" not in svg
    assert str(sparkline({}, {})).count("<polyline") == 0  # an empty day draws nothing


def test_merge_patch_servants_env() -> None:
    assert merged({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == {"a": {"c": 2, "d": 3},
                                                                                                "l": [2]}  # fmt: skip
    form = {"s0.name": "A", "s0.port": "1", "s0.isTars": "on", "s1.name": "B", "s1.port": "2", "s1.remove": "on",
            "s2.name": "", "s2.port": "9"}  # fmt: skip
    assert servants_of(form, True) == [{"name": "A", "port": 1, "isTars": True, "isTcp": False}]
    with pytest.raises(Invalid, match="A thread: 'x' is not a whole number"):
        servants_of({**form, "s0.thread": "x"}, True)
    with pytest.raises(Invalid, match="a port is required"):
        servants_of({"s0.name": "A"}, False)
    kept = [{"name": "POD", "valueFrom": {"fieldRef": {}}}, {"name": "OLD", "value": "1"}]
    assert env_of("X=1=2\n\n", kept) == [kept[0], {"name": "X", "value": "1=2"}]
    with pytest.raises(Invalid, match="env line 1"):
        env_of("no equals", [])
    ts = {"spec": {"k8s": {}, "normal": {"ports": []}}}
    patch = settings_patch(ts, {"replicas": "2", "s0.name": "http", "s0.port": "80", "resourceVersion": "7"})
    assert patch["metadata"] == {"resourceVersion": "7"} and patch["spec"]["normal"]["ports"][0]["port"] == 80
    assert patch["spec"]["k8s"]["resources"]["limits"] == {"cpu": None, "memory": None}  # empty: removed
    with pytest.raises(Invalid, match="replicas"):
        settings_patch(ts, {"replicas": "1001"})
    with pytest.raises(Invalid, match="abilityAffinity"):
        settings_patch(ts, {"replicas": "1", "abilityAffinity": "Everywhere"})


def test_node_labels_and_roles() -> None:
    node = {"metadata": {"name": "n1", "labels": {"tars.io/node.tars": "", "tars.io/ability.tars.Test-Hello": "",
                                                  "tars.io/ability.other.Test": "", "tars.io/node.other": ""}},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}  # fmt: skip
    row = node_row(node, "tars")
    assert (row.framework, row.abilities, row.address, row.ready) == (True, ["Test-Hello"], "10.0.0.1", True)
    assert not node_row(node, "third").framework
    admin, app_ops, server_ops = (User("a", (("admin", "*"),)), User("o", (("operator", "Test"),)),
                                  User("s", (("operator", "Test.Hello"),)))  # fmt: skip
    assert admin.can("nodes") and not app_ops.can("nodes")
    assert app_ops.may_create and not server_ops.may_create and admin.may_create
    assert server_ops.can("edit", "Test", "Hello") and not server_ops.can("edit", "Test")
    assert not User("d", (("developer", "*"),)).can("edit", "Test", "Hello")
