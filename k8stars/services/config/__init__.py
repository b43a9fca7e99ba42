"""The TARS config service (``tars.tarsconfig.ConfigObj``) over K8SFramework's TConfig objects or the classic
``db_tars`` tables.

``store``: the TConfigs and pods of one namespace, from watch caches; ``servant``: the ConfigF operations and the
pod-level override rule over them. ``sqlstore``: the db_tars config tables on SQLite or MySQL; ``classic``: the
ConfigF operations over them with TarsFramework's levels, references and sets; ``manage``: ``k8stars config
put/get/list/rm``. ``app``: the ``k8stars config`` process. See docs/config.md.
"""
