"""The k8stars operator: TServer → StatefulSet/DaemonSet + headless Service + TEndpoint (docs/operator.md)."""

from .controller import LeaderOptions, Operator, WebhookOptions, run_operator

__all__ = ["LeaderOptions", "Operator", "WebhookOptions", "run_operator"]
