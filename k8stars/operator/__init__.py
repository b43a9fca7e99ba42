"""The k8stars operator: TServer → StatefulSet/DaemonSet + headless Service + TEndpoint (docs/operator.md)."""

from .controller import Operator, WebhookOptions, run_operator

__all__ = ["Operator", "WebhookOptions", "run_operator"]
