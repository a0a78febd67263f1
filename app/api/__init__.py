"""The JSON API: the endpoints under /api/, their OpenAPI document, token pages, `flask generate` and `flask tokens`."""
