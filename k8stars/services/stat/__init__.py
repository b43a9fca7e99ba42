"""The TARS stat and property services (``tars.tarsstat.StatObj``, ``tars.tarsproperty.PropertyObj``) as
Prometheus metrics.

``metrics``: the reports folded into series (counters, histograms, gauges) under a series cap; ``servant``: the StatF
and PropertyF servants; ``app``: the ``k8stars stat`` process (both servants, AdminObj, ``/metrics``, registration
with the registry). See docs/stat.md.
"""
