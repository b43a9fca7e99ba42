"""The TARS remote log service (``tars.tarslog.LogObj``): servers' remote logs written to files named as
TarsFramework's LogServer names them.

``naming``: where a record goes (pure functions, every name checked); ``writer``: buffered appends through a bounded
LRU of open files under a cap on pending bytes; ``servant``: the LogF servant; ``app``: the ``k8stars log`` process
(LogObj, AdminObj, registration with the registry). See docs/log.md.
"""
