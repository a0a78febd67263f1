"""Which sign-in budget a failure spends: a known browser its own, any other the account's and the address's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import g, request
from werkzeug.wrappers import Response

from app.accounts import devices
from app.accounts.users import find_user, normalise_email
from app.extensions import limiter

# OWASP's "slow brute-force prevention with device cookies": a browser whose device cookie says it has signed in to
# the account before spends a budget of its own and nothing else, so guesses made elsewhere never lock the owner out
# of a browser they have used. The counters are Flask-Limiter's, kept in Redis.
ACCOUNT_LIMIT = "5 per 15 minutes"  # per account, shared by every browser it has never signed in on
ADDRESS_LIMIT = "20 per 15 minutes"  # per address, across accounts, for those same unknown browsers
DEVICE_LIMIT = "5 per 15 minutes"  # per known browser and account
View = TypeVar("View", bound=Callable[..., object])


def _failed(response: Response) -> bool:
    """Only failures count against the limits."""
    return response.status_code == 401


def _entered_email() -> str:
    return normalise_email(request.form.get("email", ""))[:254]


def known_device() -> str | None:
    """This browser's device id if it has signed in to the account being tried before, else None (once a request)."""
    if "sign_in_device" not in g:
        g.sign_in_device = _device_of_entered_account()
    return g.sign_in_device


def _device_of_entered_account() -> str | None:
    device = devices.this_device()
    email = _entered_email()
    if device is None or not email:
        return None  # no cookie, a forged one, or no form (a GET): no lookup, so it takes no longer than before
    user = find_user(email)
    return device.id if user is not None and user.id in device.accounts else None


def _from_known_device() -> bool:
    return known_device() is not None


def _from_unknown_device() -> bool:
    return known_device() is None


def _account_key() -> str:
    return "sign-in:" + _entered_email()


def _device_key() -> str:
    return f"sign-in-device:{known_device()}:{_entered_email()}"


def throttled(view: View) -> View:
    """Apply the three budgets to a sign-in view's POSTs; a breach raises RateLimitExceeded."""
    budgets = [(DEVICE_LIMIT, _device_key, _from_unknown_device), (ADDRESS_LIMIT, None, _from_known_device),
               (ACCOUNT_LIMIT, _account_key, _from_known_device)]
    for limit, key, exempt in budgets:
        view = limiter.limit(limit, key_func=key, methods=["POST"], deduct_when=_failed, exempt_when=exempt)(view)
    return view
