"""Accounts, as the CLI and the admin page manage them: create, list, credits, disable, one-time links."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.accounts import sessions
from app.accounts.passwords import hash_password
from app.accounts.tokens import revoke_all
from app.extensions import db
from app.models import ApiToken, Batch, Generation, User, utcnow
from app.text.wording import count_of

LINK_SALT = "imagegen-password-link"
LOCAL_EMAIL = "local@localhost"
# create_user's monthly_credits when the install's DEFAULT_MONTHLY_CREDITS applies (None already means no cap).
DEFAULT_CREDITS = "default"


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message says why."""


def normalise_email(email: str) -> str:
    """Emails are compared case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why an email address cannot be used, or None."""
    local, at, domain = email.partition("@")
    if not at or not local or not domain or " " in email or len(email) > 254:
        return "Enter an email address such as name@example.com."
    return None


def find_user(email: str) -> User | None:
    """The account with this email, if any."""
    return db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def require_user(email: str) -> User:
    """The account with this email, or AccountError."""
    user = find_user(email)
    if user is None:
        raise AccountError(f"No account has the email {normalise_email(email)}.")
    return user


def create_user(email: str, password: str | None = None, is_admin: bool = False,
                monthly_credits: float | None | Literal["default"] = DEFAULT_CREDITS) -> User:
    """Make an account (without a password it waits for its invite link); the first admin takes ownerless rows."""
    email = normalise_email(email)
    problem = email_problem(email)
    if problem:
        raise AccountError(problem)
    if find_user(email) is not None:
        raise AccountError(f"An account with the email {email} exists already.")
    if monthly_credits == DEFAULT_CREDITS:
        monthly_credits = current_app.config["DEFAULT_MONTHLY_CREDITS"]
    first_admin = is_admin and not has_admin()
    user = User(email=email, is_admin=is_admin, monthly_credits=monthly_credits,
                password_hash=hash_password(password) if password else None)
    db.session.add(user)
    db.session.flush()
    if first_admin:
        _hand_over_the_local_run(user)
    db.session.commit()
    return user


def _hand_over_the_local_run(admin: User) -> None:
    """Give the first admin every batch made before accounts existed, the local user's too; revoke its tokens."""
    local_id = sa.select(User.id).where(User.email == LOCAL_EMAIL).scalar_subquery()
    for model in (Batch, Generation):
        owned_before = model.owner_id.is_(None) | (model.owner_id == local_id)
        db.session.execute(sa.update(model).where(owned_before).values(owner_id=admin.id))
    # A token made without accounts would otherwise open the API as an account nobody can sign in to.
    db.session.execute(sa.update(ApiToken).where(ApiToken.user_id == local_id, ApiToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))


def has_admin() -> bool:
    """Whether any active admin exists (a fresh install has none; the local user of AUTH_MODE=none is no admin)."""
    query = sa.exists().where(User.is_admin, User.disabled.is_(False), User.email != LOCAL_EMAIL)
    return db.session.scalar(sa.select(query)) or False


def set_password(user: User, password: str) -> None:
    """Store a new password, end every session the user had, and make earlier password links unusable."""
    user.password_hash = hash_password(password)
    user.session_version += 1
    sessions.end_all(user)


def set_disabled(user: User, disabled: bool) -> str:
    """Disable an account (ending every session) or enable it again; says what happened, for the page and the CLI.

    Enabling revokes the tokens the account had. They are dead while it is disabled and stay dead: a disable is
    how someone loses access, and tokens kept on machines nobody has checked since must not come back with it.
    An account being deleted stays disabled (AccountError).
    """
    if user.being_deleted and not disabled:
        raise AccountError(f"{user.email} is being deleted; it cannot be enabled again.")
    if user.disabled == disabled:
        return f"{user.email} is {'disabled' if disabled else 'enabled'} already."
    user.disabled = disabled
    user.session_version += 1
    if disabled:
        sessions.end_all(user)
        return f"{user.email} is disabled: signed out everywhere, and its API tokens refused."
    revoked = revoke_all(user)
    if not revoked:
        return f"{user.email} is enabled; it had no API tokens to revoke."
    return (f"{user.email} is enabled; its {count_of(revoked, 'API token')} from before it was disabled "
            f"{'was' if revoked == 1 else 'were'} revoked (new ones can be made on its API tokens page).")


def set_monthly_credits(user: User, credits: float | None) -> None:
    """Change a user's monthly allowance (None: no cap)."""
    user.monthly_credits = credits
    db.session.commit()


def list_users() -> list[User]:
    """Every account, admins first, then by email."""
    return list(db.session.scalars(sa.select(User).order_by(User.is_admin.desc(), User.email)))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT)


def password_link(user: User, external: bool = True) -> str:
    """A link to set a password, usable once: it is bound to the session version, which setting a password bumps."""
    token = _serializer().dumps({"user": user.id, "version": user.session_version})
    return url_for("accounts.set_password_page", token=token, _external=external)


def user_for_link(token: str) -> User | None:
    """The account a password link was made for, if the link is genuine, unused and not expired."""
    max_age = int(current_app.config["PASSWORD_LINK_HOURS"] * 3600)
    try:
        data = _serializer().loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict):
        return None
    user = db.session.get(User, data.get("user")) if isinstance(data.get("user"), int) else None
    if user is None or user.disabled or user.session_version != data.get("version"):
        return None
    return user


def local_user() -> User:
    """The one implicit account of AUTH_MODE=none, made on first use: no admin, it sees everything by the mode."""
    user = find_user(LOCAL_EMAIL)
    if user is None:
        try:
            # The operator's own machine: no allowance, whatever DEFAULT_MONTHLY_CREDITS says.
            user = create_user(LOCAL_EMAIL, monthly_credits=None)
        except (AccountError, sa.exc.IntegrityError):
            db.session.rollback()  # another process made it first
            user = require_user(LOCAL_EMAIL)
    return user
