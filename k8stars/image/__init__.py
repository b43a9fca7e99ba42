"""Container images without Docker: deterministic layers, an asynchronous OCI registry client, base images (busybox,
root file system tars) and K8SFramework's image service (build from a server package, record on the TImage)."""

from .layer import Blob, Layer, LayerBuilder
from .oci import BaseImage, ConfigChanges, push_image, resolve_image
from .reference import Credentials, ImageRef, credentials_from_dockerconfig
from .registry import AuthError, RegistryClient, RegistryError, RegistryUnavailable
from .rootfs import push_busybox_image, push_files_on_base, push_layers_on_base, push_rootfs_image

__all__ = [
    "AuthError",
    "BaseImage",
    "Blob",
    "ConfigChanges",
    "Credentials",
    "ImageRef",
    "Layer",
    "LayerBuilder",
    "RegistryClient",
    "RegistryError",
    "RegistryUnavailable",
    "credentials_from_dockerconfig",
    "push_busybox_image",
    "push_files_on_base",
    "push_image",
    "push_layers_on_base",
    "push_rootfs_image",
    "resolve_image",
]
