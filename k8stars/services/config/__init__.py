"""The TARS config service (``tars.tarsconfig.ConfigObj``) over K8SFramework's TConfig objects.

``store``: the TConfigs and pods of one namespace, from watch caches; ``servant``: the ConfigF operations and the
pod-level override rule; ``app``: the ``k8stars config`` process. See docs/config.md.
"""
