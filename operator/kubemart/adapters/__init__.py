"""Adapters: the one place each outside system (Kubernetes API, helm, HTTP) is spoken to."""
