"""kevent: the Kubernetes Events of a namespace's TARS servers kept in the monitoring store with a retention, queryable
per server and pod (K8SFramework's tarskevent keeps them in Elasticsearch).

``store``: the ``t_kevent`` table; ``watcher``: which Events are kept and for which server; ``app``: the
``k8stars kevent`` process (watches, writes, prunes, ``/api/events``). See docs/monitor.md.
"""
