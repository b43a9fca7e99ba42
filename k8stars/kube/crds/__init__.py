"""CustomResourceDefinitions of group k8s.tars.io: v1beta3 (stored) and every older version K8SFramework serves.

The schemas follow K8SFramework's CRDs field by field (names, types, defaults, patterns, bounds, short names,
printer columns, subresources), so that a YAML valid there is valid here. One module per kind (`tserver`,
`tconfig`, ...), built from the helpers of `schema` (and `pod`, TServer's pod-level pieces); `registry` lists them.
Older versions: TConfig, TTemplate, TImage, TEndpoint, TExitedRecord, TTree and TAccount serve v1beta1 and v1beta2
with (nearly) v1beta3's schema and no conversion; TServer v1beta1/v1beta2 and TFrameworkConfig v1beta2 differ and are
served only with the conversion webhook (`with_conversion`, k8stars/operator/conversion.py).

Generated from this package (`files.outputs()`): deploy/crds/*.yaml (every kind, for kubectl), the controller chart's
crds/ (the kinds without conversion) and files/crds/ (TServer and TFrameworkConfig, plain and with the webhook, which
the chart's templates/crds.yaml completes with its Service and CA):

    python -m k8stars.kube.crds write [DIR]     # DIR: only every kind's CRD, into DIR
    python -m k8stars.kube.crds check [DIR]     # exit 1 when a file is stale or no longer generated

Where K8SFramework's schema has a typo that disables a rule (`require:` instead of `required:`, `parrern:`), the
rule is not enforced here either, so objects accepted there stay accepted; the operator and the webhook check those
fields.
"""

from .files import CHART, HEADER, files, main, outputs, render
from .manifest import CONVERSION_PATH, LEGACY, crd, legacy_version
from .registry import CONVERTED, KINDS, all_crds, with_conversion
from .taccount import taccount_schema
from .tconfig import tconfig_schema
from .tendpoint import tendpoint_schema
from .texitedrecord import texitedrecord_schema
from .tframeworkconfig import tframeworkconfig_schema, tframeworkconfig_v1beta2_schema
from .timage import SERVER_TYPES, timage_schema, timage_v1beta1_schema
from .tserver import OLD_COLUMNS as OLD_TSERVER_COLUMNS
from .tserver import tserver_schema, tserver_v1beta1_schema, tserver_v1beta2_schema
from .ttemplate import ttemplate_schema
from .ttree import ttree_schema

__all__ = [
    "CHART",
    "CONVERSION_PATH",
    "CONVERTED",
    "HEADER",
    "KINDS",
    "LEGACY",
    "OLD_TSERVER_COLUMNS",
    "SERVER_TYPES",
    "all_crds",
    "crd",
    "files",
    "legacy_version",
    "main",
    "outputs",
    "render",
    "taccount_schema",
    "tconfig_schema",
    "tendpoint_schema",
    "texitedrecord_schema",
    "tframeworkconfig_schema",
    "tframeworkconfig_v1beta2_schema",
    "timage_schema",
    "timage_v1beta1_schema",
    "tserver_schema",
    "tserver_v1beta1_schema",
    "tserver_v1beta2_schema",
    "ttemplate_schema",
    "ttree_schema",
    "with_conversion",
]
