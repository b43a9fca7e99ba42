"""The TARS notify service (``tars.tarsnotify.NotifyObj``): servers' alarms and life events.

``model``: a notification and TarsFramework's level rules; ``queue``: the bounded queue between the servant and a
store, and the servant (NotifyF); ``sqlstore``: the classic ``db_tars.t_server_notifys`` on SQLite or MySQL;
``kubestore``: Kubernetes Events on the reporting pod (else its TServer); ``app``: the ``k8stars notify`` process.
See docs/notify.md.
"""
