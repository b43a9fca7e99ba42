"""A CRD manifest of group k8s.tars.io: the stored v1beta3, older versions served alongside (the same schema but for
what a kind lists), and conversion by webhook for the kinds whose older versions differ."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..meta import GROUP, VERSION
from .schema import Schema

# Older versions K8SFramework serves with conversion None (a schema equal to v1beta3's, but for what a kind lists).
LEGACY = ("v1beta1", "v1beta2")
CONVERSION_PATH = "/convert"


def crd(
    kind: str,
    schema: Schema,
    *,
    short_names: Sequence[str] = (),
    columns: Sequence[dict[str, str]] = (),
    status: bool = False,
    scale: dict[str, str] | None = None,
    legacy: Sequence[str] = (),
    legacy_schemas: Mapping[str, Callable[[], Schema]] | None = None,
    plural: str | None = None,
) -> dict[str, Any]:
    """A CRD storing v1beta3; `legacy` versions are served too, deprecated, with the same schema (K8SFramework's
    older versions of these kinds differ from v1beta3 in nothing but the name: conversion None), or the one
    `legacy_schemas` gives for a version."""
    plural = plural or kind.lower() + "s"  # K8SFramework's TFrameworkKey has the plural "tframeworkkey"
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    subresources: dict[str, Any] = {}
    if status:
        subresources["status"] = {}
    if scale:
        subresources["scale"] = scale
    if subresources:
        version["subresources"] = subresources
    if columns:
        version["additionalPrinterColumns"] = list(columns)
    schemas = legacy_schemas or {}
    versions = [legacy_version(version, kind, name, schemas[name]() if name in schemas else None) for name in legacy]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "k8stars"}},
        "spec": {"group": GROUP, "names": names, "scope": "Namespaced", "versions": [*versions, version]},
    }


def legacy_version(
    current: dict[str, Any],
    kind: str,
    name: str,
    schema: Schema | None = None,
    columns: Sequence[dict[str, str]] | None = None,
) -> dict[str, Any]:
    older: dict[str, Any] = json.loads(json.dumps(current))
    older.update(
        name=name,
        storage=False,
        deprecated=True,
        deprecationWarning=f"{GROUP}/{name} {kind} is deprecated; use {GROUP}/{VERSION} {kind}",
    )
    if schema is not None:
        older["schema"] = {"openAPIV3Schema": schema}
    if columns is not None:
        older["additionalPrinterColumns"] = list(columns)
    return older


def with_webhook_conversion(
    manifest: dict[str, Any],
    older_versions: Mapping[str, Callable[[], Schema]],
    client: dict[str, Any],
    columns: Sequence[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """`manifest` also serving `older_versions` (name → schema), converted by the webhook at `client` (an
    apiextensions WebhookClientConfig); `columns`: the older versions' printer columns when they differ."""
    kind = manifest["spec"]["names"]["kind"]
    converted: dict[str, Any] = json.loads(json.dumps(manifest))
    spec = converted["spec"]
    (current,) = [v for v in spec["versions"] if v["name"] == VERSION]
    older = [legacy_version(current, kind, name, make(), columns) for name, make in older_versions.items()]
    spec["versions"] = [*older, current]
    spec["conversion"] = {
        "strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client},
    }
    return converted
