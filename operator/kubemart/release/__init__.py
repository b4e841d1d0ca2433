"""The AppInstall release engine: observe -> state -> decide -> actions/ -> summarize, tied by reconcile."""
