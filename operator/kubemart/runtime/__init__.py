"""The operator's machinery: keyed reconcile loops, settings, backoff."""
