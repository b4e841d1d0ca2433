"""Where catalogs and charts come from: one seam per source type."""
