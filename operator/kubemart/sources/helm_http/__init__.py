"""Helm chart repositories over HTTP(S): index.yaml and chart archives."""

from kubemart.sources.helm_http.source import HelmHttpSource, HttpLimits

__all__ = ["HelmHttpSource", "HttpLimits"]
