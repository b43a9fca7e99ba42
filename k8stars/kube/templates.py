"""TTemplates: a template's chain of parents and a TServer's merged config template, as the operator renders it into
each server's ConfigMap and as the web console shows it."""

from __future__ import annotations

from collections.abc import Mapping

from k8stars.tars import confmerge

from .client import Obj


class TemplateError(ValueError):
    """A TServer's TTemplate chain cannot be resolved (missing template or parent, a loop, unparsable content)."""


def template_chain(name: str, templates: Mapping[str, Obj]) -> list[Obj]:
    """The TTemplate `name` and its ancestors, root first (the root is its own parent, or has none)."""
    chain: list[Obj] = []
    seen: set[str] = set()
    while name not in seen:
        tt = templates.get(name)
        if tt is None:
            raise TemplateError(f"TTemplate {name!r} not found" + (f" (parent of {chain[0]['metadata']['name']!r})"
                                                                   if chain else ""))  # fmt: skip
        seen.add(name)
        chain.insert(0, tt)
        name = str((tt.get("spec") or {}).get("parent") or name)
    if name != chain[0]["metadata"]["name"]:
        raise TemplateError(f"TTemplate {name!r}: its parents form a loop")
    return chain


def server_template(ts: Obj, templates: Mapping[str, Obj]) -> str:
    """The TServer's config template as tarscli renders it in each pod: every TTemplate of the chain merged over its
    parent, then `spec.tars.profile` over the result (K8SFramework's order: a child and the profile win); the
    `${...}` variables stay for the pod to fill."""
    tars = (ts.get("spec") or {}).get("tars") or {}
    name = str(tars.get("template") or "")
    if not name:
        return ""
    text = ""
    layers = [(str(t["metadata"]["name"]), str((t.get("spec") or {}).get("content") or ""))
              for t in template_chain(name, templates)]  # fmt: skip
    layers.append(("profile", str(tars.get("profile") or "")))
    for what, content in layers:
        if not content.strip():
            continue
        try:
            text = confmerge.merge_text(text, content)
        except confmerge.MergeConfError as e:
            raise TemplateError(f"{what}: {e}") from None
    return text
