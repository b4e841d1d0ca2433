"""Helm charts in OCI registries (`oci://host[:port]/path`): the distribution API's catalog, tags and blobs."""

from kubemart.sources.oci.client import Limits
from kubemart.sources.oci.source import OciSource

__all__ = ["Limits", "OciSource"]
