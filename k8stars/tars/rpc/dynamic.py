"""Calling any servant without generated code: interfaces from .tars files at run time, arguments and results as
JSON (what ``k8stars call`` does)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.interface import Interface, Operation
from k8stars.tars.jsonvalue import from_json, to_json
from k8stars.tars.protocol import (
    adminf,
    adminreg,
    configf,
    logf,
    node,
    nodef,
    notifyf,
    propertyf,
    queryf,
    statf,
    tarsregistry,
    topology,
)
from k8stars.tars.rpc.proxy import Communicator
from k8stars.tars.stub import ServantProxy

# Framework servants whose interface ships with k8stars, by object name.
FRAMEWORK_INTERFACES: dict[str, Interface] = {
    "tars.tarsregistry.QueryObj": queryf.QueryF_interface,
    "tars.tarsregistry.Registry": tarsregistry.tarsregistry_interface,
    "tars.tarsnode.ServerObj": nodef.ServerF_interface,
    "tars.tarsnode.NodeObj": node.Node_interface,
    "tars.tarsAdminRegistry.AdminRegObj": adminreg.AdminReg_interface,
    "tars.tarsconfig.ConfigObj": configf.Config_interface,
    "tars.tarsnotify.NotifyObj": notifyf.Notify_interface,
    "tars.tarsstat.StatObj": statf.StatF_interface,
    "tars.tarsproperty.PropertyObj": propertyf.PropertyF_interface,
    "tars.tarslog.LogObj": logf.Log_interface,
    "tars.tarslog.TopologyObj": topology.Topology_interface,
    "AdminObj": adminf.AdminF_interface,
}
SHIPPED = {i.name: i for i in FRAMEWORK_INTERFACES.values()}


def find_interface(
    servant: str, idl: Sequence[str | Path] = (), include_dirs: Sequence[str | Path] = (), name: str | None = None
) -> Interface:
    """The interface to call ``servant`` with: ``name`` from the IDL files, their only interface, or the shipped
    framework interface for a framework object name."""
    if idl:
        found = list(load_runtime(idl, include_dirs).interfaces().values())
        if name:
            found = [i for i in found if name in (i.name, f"{i.module}::{i.name}", f"{i.module}.{i.name}")]
        if len(found) == 1:
            return found[0]
        names = ", ".join(f"{i.module}::{i.name}" for i in found) or "none"
        raise ValueError(f"choose an interface with --interface (found: {names})")
    if name and name in SHIPPED:
        return SHIPPED[name]
    iface = FRAMEWORK_INTERFACES.get(servant)
    if iface is None:
        raise ValueError(f"{servant} is not a framework servant: give its IDL with --idl")
    return iface


def describe(iface: Interface) -> list[str]:
    """One line per operation, in IDL syntax."""
    lines = []
    for op in iface.operations.values():
        params = ", ".join(("out " if p.out else "") + f"{p.type.idl_name()} {p.name}" for p in op.params)
        ret = op.ret.idl_name() if op.ret is not None else "void"
        lines.append(f"{ret} {op.name}({params})")
    return lines


def args_from_json(op: Operation, doc: Mapping[str, Any]) -> list[Any]:
    known = {f.name for f in op.in_fields}
    unknown = set(doc) - known
    if unknown:
        raise ValueError(f"{op.name} has no parameter {', '.join(sorted(unknown))} (it takes: {', '.join(known)})")
    return [from_json(f.type, doc[f.name], f.name) if f.name in doc else f.default_value() for f in op.in_fields]


def result_to_json(op: Operation, result: Any) -> dict[str, Any]:
    if op.result_type is not None:
        return {f.name: to_json(f.type, v) for f, v in zip(op.out_fields, result, strict=True)}
    if op.ret is None:
        return {}
    return {"ret": to_json(op.ret, result)}


async def call_json(
    comm: Communicator, target: str, iface: Interface, func: str, doc: Mapping[str, Any], **options: Any
) -> dict[str, Any]:
    """Call ``func`` of ``target`` with JSON arguments; the result as JSON (``ret`` and out parameters)."""
    if func not in iface.operations:
        raise ValueError(f"{iface.name} has no operation {func} (see --list)")
    op = iface.operations[func]
    proxy = comm.string_to_proxy(ServantProxy, target, interface=iface)
    if options:
        proxy = proxy.tars_options(**options)
    result = await proxy.tars_invoke(func, args_from_json(op, doc))
    return result_to_json(op, result)
