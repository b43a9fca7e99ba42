"""The k8stars operator: TServer → StatefulSet/DaemonSet + headless Service + TEndpoint (docs/operator.md)."""

from .controller import Operator
from .runner import LeaderOptions, WebhookOptions, run_operator
from .signals import until_signalled

__all__ = ["LeaderOptions", "Operator", "WebhookOptions", "run_operator", "until_signalled"]
