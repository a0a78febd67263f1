"""Image providers: the Stability AI API and the offline demo renderer (no Flask import)."""
