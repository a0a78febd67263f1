"""Secrets and signatures to the Standard Webhooks spec (webhook-id, webhook-timestamp, webhook-signature)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh signing secret: "whsec_" and 24 random bytes in base64, as the spec writes them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    """A message id, the same on every attempt of one delivery (receivers use it to ignore repeats)."""
    return "msg_" + secrets.token_urlsafe(18)


def signed_headers(secret: str, message_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The three headers that let the receiver check `body` came from us, now."""
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, at, body)}
