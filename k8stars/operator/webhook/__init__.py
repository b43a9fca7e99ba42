"""Admission webhooks for k8s.tars.io: defaulting (mutating) and validation with messages that say what is wrong,
why, and how to fix it; and the CRD conversion webhook. A small aiohttp HTTPS app (`/mutate`, `/validate`,
`/convert`, `/healthz`), run by `k8stars operator --webhook-port ...` or embedded (tests).

- `server`: the HTTP side (routes, TLS, the AdmissionReview and ConversionReview envelopes);
- `admission`: picks the hooks of a request's kind; `context`: what every hook gets;
- one module per kind (`tserver`, `tconfig`, `ttemplate`, `ttree`, `timage`, `taccount`) with its mutation and
  validation (pure functions, then the hooks that read other objects); `owned`: the objects the operator owns;
- `configurations`: the webhook configurations registered with the apiserver; `identity`: who sends a request.

What each kind gets: docs/operator.md, "Admission webhooks".
"""

from ..conversion import convert_object, convert_tserver
from .admission import Admission
from .configurations import MUTATED, WEBHOOK_KINDS, register, webhook_configurations
from .context import Context
from .identity import is_service_account, is_system_user, operator_identity, whoami
from .owned import OWNED_KINDS, check_owned
from .patch import label_patch
from .server import MAX_REVIEW_BYTES, make_app, serve
from .taccount import check_password, hash_password, taccount_patch
from .tconfig import TCONFIG_IMMUTABLE, tconfig_labels, validate_tconfig
from .timage import timage_patch
from .tserver import (
    MAX_NAME,
    MAX_REPLICAS_ANNOTATION,
    MIN_REPLICAS_ANNOTATION,
    node_image_missing,
    replica_bounds,
    tserver_labels,
    tserver_patch,
    validate_tserver,
)
from .ttemplate import ttemplate_patch, validate_ttemplate
from .ttree import TREE_NAME, ttree_patch, validate_ttree

__all__ = [
    "MAX_NAME",
    "MAX_REPLICAS_ANNOTATION",
    "MAX_REVIEW_BYTES",
    "MIN_REPLICAS_ANNOTATION",
    "MUTATED",
    "OWNED_KINDS",
    "TCONFIG_IMMUTABLE",
    "TREE_NAME",
    "WEBHOOK_KINDS",
    "Admission",
    "Context",
    "check_owned",
    "check_password",
    "convert_object",
    "convert_tserver",
    "hash_password",
    "is_service_account",
    "is_system_user",
    "label_patch",
    "make_app",
    "node_image_missing",
    "operator_identity",
    "register",
    "replica_bounds",
    "serve",
    "taccount_patch",
    "tconfig_labels",
    "timage_patch",
    "tserver_labels",
    "tserver_patch",
    "ttemplate_patch",
    "ttree_patch",
    "validate_tconfig",
    "validate_tserver",
    "validate_ttemplate",
    "validate_ttree",
    "webhook_configurations",
    "whoami",
]
