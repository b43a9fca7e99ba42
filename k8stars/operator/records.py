"""How many records the operator keeps: TFrameworkConfig `tars-framework`'s `recordLimit`, as in K8SFramework.

`texitedPod` bounds each TExitedRecord's pods, `timageRelease` each TImage's releases, `tconfigHistory` each TConfig
group's deactivated versions (k8stars.operator.tconfig). A namespace without the object, or a value that is not a
count, gets K8SFramework's defaults. A new limit applies at the next write of each record.
"""

from __future__ import annotations

import logging

from k8stars.kube.client import Obj

log = logging.getLogger("k8stars.operator")

FRAMEWORK_CONFIG = "tars-framework"
DEFAULTS = {"texitedPod": 48, "timageRelease": 48, "tconfigHistory": 10}


def limit(framework: Obj | None, field: str) -> int:
    """recordLimit.<field> of the namespace's TFrameworkConfig (None: it has none)."""
    default = DEFAULTS[field]
    if framework is None:
        return default
    value = (framework.get("recordLimit") or {}).get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        log.warning("TFrameworkConfig recordLimit.%s %r is not a count; keeping %d", field, value, default)
        return default
    return value
