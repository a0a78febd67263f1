"""The JSON API: personal access tokens, the endpoints under /api/, their OpenAPI document, and `flask generate`."""
