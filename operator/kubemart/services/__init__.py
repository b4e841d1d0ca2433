"""Services: reconcile loops for each kind, built from domain decisions and adapters."""
