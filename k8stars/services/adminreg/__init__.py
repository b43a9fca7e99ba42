"""The admin registry (``tars.tarsAdminRegistry.AdminRegObj``, K8SFramework's ``AdminReg``): consoles send server
commands here and it forwards each to the node servant of the pod (``tars.tarsnode.NodeObj`` on the pod IP at
19385, served by the pod's tarscli).

``pods``: a nodeName (a pod name or pod IP; empty: every pod of the server) to pod IPs, through the Kubernetes API;
``auth``: K8SFramework's developer/operator/admin checks and tickets against TAccounts; ``servant``: AdminReg;
``app``: the ``k8stars adminreg`` process. See docs/adminreg.md.
"""
