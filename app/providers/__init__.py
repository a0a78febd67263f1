"""What makes an image: the Stability AI client, the offline demo renderer, the API's options (no Flask import)."""
