"""Image providers: the Stability AI API and the offline demo renderer, chosen by configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.providers.base import ImageProvider
    from app.providers.stability import StabilityClient


def provider_name(config: Mapping[str, object]) -> str:
    """Which provider this configuration uses: 'stability' with an API key, else 'demo'."""
    return "stability" if config.get("STABILITY_API_KEY") else "demo"


def stability_client_for(app: Flask) -> StabilityClient | None:
    """This process's API client (one pooled HTTP session, the shared rate limiter), or None without a key."""
    if provider_name(app.config) != "stability":
        return None
    key = app.config["STABILITY_API_KEY"]
    client = app.extensions.get("stability_client")
    if client is None:
        from app.providers.stability import StabilityClient
        from app.queueing import redis_connection
        from app.rate_limit import RedisRateLimiter, parse_rate_limit

        limiter = RedisRateLimiter(redis_connection(app), parse_rate_limit(app.config["STABILITY_RATE_LIMIT"]),
                                   lockout_seconds=app.config["STABILITY_LOCKOUT_SECONDS"])
        client = app.extensions["stability_client"] = StabilityClient(
            key, app.config["STABILITY_API_BASE_URL"], timeout=app.config["STABILITY_TIMEOUT"], limiter=limiter)
    return client


def provider_for(app: Flask) -> ImageProvider:
    """The Stability client when a key is configured, else the offline demo provider."""
    client = stability_client_for(app)
    if client is not None:
        return client
    from app.providers.demo import DemoProvider

    return DemoProvider(delay=app.config["DEMO_PROVIDER_DELAY"])
