"""Kubernetes side of k8stars: the k8s.tars.io CRDs (K8SFramework-compatible), typed models and label names."""

from .meta import API_VERSION, GROUP, VERSION

__all__ = ["API_VERSION", "GROUP", "VERSION"]
