"""A user's webhook endpoints: add one (its URL checked against SSRF), list, rotate its secret, enable, remove."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import User, WebhookDelivery, WebhookEndpoint
from app.webhooks import addresses, bodies, signing

MAX_ENDPOINTS = 20
DELIVERIES_LISTED = 50


class EndpointRefused(ValueError):
    """The endpoint cannot be saved; `field` is the field the message belongs next to."""

    def __init__(self, field: str, message: str, conflict: bool = False) -> None:
        self.field, self.conflict = field, conflict  # conflict: the request is fine, the account is full
        super().__init__(message)


def check_url(url: str) -> str:
    """The URL, stripped, if a webhook may go there; EndpointRefused('url', why) otherwise."""
    url = (url or "").strip()
    try:
        if current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
            addresses.parse(url)  # any host will do, so there is nothing to look up until a delivery goes
        else:
            addresses.check(url, allow_private=False)
    except addresses.AddressRefused as exc:
        raise EndpointRefused("url", str(exc)) from None
    return url


def create(user: User, url: str, events: Sequence[str], body_format: str = "standard",
           batch_id: int | None = None) -> WebhookEndpoint:
    """Add an endpoint (in the caller's transaction when batch_id is set; committed otherwise)."""
    chosen = [event for event in bodies.EVENTS if event in set(events)]
    if not chosen or len(chosen) != len(events):
        raise EndpointRefused("events", f"Pick at least one of {', '.join(bodies.EVENTS)}, each once.")
    if body_format not in bodies.BODY_FORMATS:
        raise EndpointRefused("body_format", f"Choose one of {', '.join(bodies.BODY_FORMATS)}.")
    url = check_url(url)
    if batch_id is None and len(of_user(user)) >= MAX_ENDPOINTS:
        raise EndpointRefused("url", f"You have {MAX_ENDPOINTS} endpoints already; remove one first.",
                             conflict=True)
    endpoint = WebhookEndpoint(user_id=user.id, batch_id=batch_id, url=url, events=chosen, body_format=body_format,
                               secret=signing.new_secret())
    db.session.add(endpoint)
    if batch_id is None:
        db.session.commit()
    return endpoint


def of_user(user: User) -> list[WebhookEndpoint]:
    """The user's account-wide endpoints, oldest first (a batch's own webhook_url is not listed)."""
    return list(db.session.scalars(sa.select(WebhookEndpoint).where(
        WebhookEndpoint.user_id == user.id, WebhookEndpoint.batch_id.is_(None)).order_by(WebhookEndpoint.id)))


def owned(user: User, endpoint_id: int) -> WebhookEndpoint | None:
    """One of the user's endpoints, or None for a missing or someone else's id."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    return endpoint if endpoint is not None and endpoint.user_id == user.id else None


def owned_delivery(user: User, delivery_id: int) -> WebhookDelivery | None:
    """One delivery to one of the user's endpoints, or None."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    return delivery if delivery is not None and delivery.endpoint.user_id == user.id else None


def deliveries(user: User, endpoint_id: int | None = None, limit: int = DELIVERIES_LISTED) -> list[WebhookDelivery]:
    """The user's latest deliveries, newest first (to one endpoint if given)."""
    query = (sa.select(WebhookDelivery).join(WebhookEndpoint).where(WebhookEndpoint.user_id == user.id)
             .order_by(WebhookDelivery.id.desc()).limit(limit))
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(db.session.scalars(query))


def rotate(endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new secret (the old one stops working at once); return it, to be shown once."""
    endpoint.secret = signing.new_secret()
    db.session.commit()
    return endpoint.secret


def enable(endpoint: WebhookEndpoint) -> None:
    """Turn an endpoint that was disabled after failing back on, its failures forgotten."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    db.session.commit()


def remove(endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its deliveries."""
    db.session.delete(endpoint)
    db.session.commit()
