"""The monitoring query services (``tars.tarsquerystat.QueryObj``, ``tars.tarsqueryproperty.QueryObj``): K8SFramework's
``MonitorQuery.query`` over the per-minute history the stat service keeps (k8stars.services.stat.history).

``query``: a request checked and turned into parameterised SQL, and its answer; ``servant``: the MonitorQuery
servants; ``web``: the JSON view for our console; ``app``: the ``k8stars monitor`` process. See docs/monitor.md.
"""
