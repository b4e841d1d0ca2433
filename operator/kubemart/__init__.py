"""Kubemart: a Kubernetes-native app store, run as a kopf operator."""

__version__ = "0.1.0"
