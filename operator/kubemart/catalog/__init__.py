"""Catalogs: the MarketSource sync (sync.py) through the sources seam, and its pure parts: chart
versions to MarketApp specs (entries.py), what to write (plan.py), what status says (status.py)."""
