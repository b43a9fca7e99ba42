"""The API resources the operator reads and writes."""

from __future__ import annotations

from .client import Resource
from .meta import GROUP, VERSION

TSERVER = Resource(GROUP, VERSION, "tservers", "TServer")
TCONFIG = Resource(GROUP, VERSION, "tconfigs", "TConfig")
TTEMPLATE = Resource(GROUP, VERSION, "ttemplates", "TTemplate")
TIMAGE = Resource(GROUP, VERSION, "timages", "TImage")
TENDPOINT = Resource(GROUP, VERSION, "tendpoints", "TEndpoint")
TEXITEDRECORD = Resource(GROUP, VERSION, "texitedrecords", "TExitedRecord")
TFRAMEWORKCONFIG = Resource(GROUP, VERSION, "tframeworkconfigs", "TFrameworkConfig")
TTREE = Resource(GROUP, VERSION, "ttrees", "TTree")
TACCOUNT = Resource(GROUP, VERSION, "taccounts", "TAccount")
TFRAMEWORKKEY = Resource(GROUP, VERSION, "tframeworkkey", "TFrameworkKey")  # K8SFramework's plural, without an s
TPLUGIN = Resource(GROUP, VERSION, "tplugins", "TPlugin")

STATEFULSET = Resource("apps", "v1", "statefulsets", "StatefulSet")
DAEMONSET = Resource("apps", "v1", "daemonsets", "DaemonSet")
SERVICE = Resource("", "v1", "services", "Service")
POD = Resource("", "v1", "pods", "Pod")
CONFIGMAP = Resource("", "v1", "configmaps", "ConfigMap")
PERSISTENTVOLUMECLAIM = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
CRD = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False)

TARS_KINDS = (
    TSERVER,
    TCONFIG,
    TTEMPLATE,
    TIMAGE,
    TENDPOINT,
    TEXITEDRECORD,
    TFRAMEWORKCONFIG,
    TTREE,
    TACCOUNT,
    TFRAMEWORKKEY,
    TPLUGIN,
)
MUTATING_WEBHOOK = Resource(
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False
)
VALIDATING_WEBHOOK = Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False
)
