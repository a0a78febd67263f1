"""Signing in and out, setting a password from a one-time link, and the account page."""

from __future__ import annotations

import math
import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_limiter import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.accounts.auth import accounts_mode, safe_next
from app.accounts.forms import ChangePasswordForm, LoginForm, SetPasswordForm
from app.accounts.passwords import verify_password
from app.accounts.users import find_user, has_admin, normalise_email, set_password, user_for_link
from app.extensions import db, limiter
from app.generations import spending
from app.models import utcnow
from app.text.wording import count_of

bp = Blueprint("accounts", __name__)
WRONG_CREDENTIALS = "Wrong email or password."
# Brute force: failed sign-ins counted per account and per address (Flask-Limiter, kept in Redis).
ACCOUNT_LIMIT = "5 per 15 minutes"
ADDRESS_LIMIT = "20 per 15 minutes"


def _failed_sign_in(response: Response) -> bool:
    """Only failures count against the limits."""
    return response.status_code == 401


def _account_key() -> str:
    return "sign-in:" + normalise_email(request.form.get("email", ""))[:254]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_LIMIT, key_func=_account_key, methods=["POST"], deduct_when=_failed_sign_in)
@limiter.limit(ADDRESS_LIMIT, methods=["POST"], deduct_when=_failed_sign_in)
def login() -> Response | tuple[str, int] | str:
    """The sign-in form; the same message, after the same work, for an unknown email and a wrong password."""
    if not accounts_mode() or current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")), code=303)
    form = LoginForm()
    if not form.validate_on_submit():
        return _login_page(form, 422 if request.method == "POST" else 200)
    user = find_user(form.email.data or "")
    if not verify_password(user.password_hash if user else None, form.password.data or "") or not user.is_active:
        form.password.errors = [WRONG_CREDENTIALS]
        return _login_page(form, 401)
    user.last_login_at = utcnow()
    db.session.commit()
    login_user(user)
    return redirect(safe_next(request.args.get("next")), code=303)


def _login_page(form: LoginForm, status: int, message: str | None = None) -> tuple[str, int]:
    """The sign-in page, or how to make the first admin on a fresh install."""
    return render_template("accounts/login.html", form=form, no_admin=not has_admin(), message=message), status


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(_error: RateLimitExceeded) -> tuple[str, int]:
    """Explain the pause in minutes, on the sign-in page, with the email kept."""
    limit = limiter.current_limit
    # The window's own reset time: reset_at is rounded up a second, which made a fresh 15-minute pause say 16.
    seconds = max(60.0, (limit.window.reset_time - time.time()) if limit else 900.0)
    minutes = math.ceil(seconds / 60)
    form = LoginForm()
    message = f"Too many attempts; try again in {count_of(minutes, 'minute')}."
    return _login_page(form, 429, message)


@bp.post("/logout")
def logout() -> Response:
    """End this session."""
    logout_user()
    return redirect(url_for("accounts.login") if accounts_mode() else url_for("prompts.index"), code=303)


@bp.route("/account/password/<token>", methods=["GET", "POST"])
def set_password_page(token: str) -> Response | tuple[str, int]:
    """Set a password from an invite or reset link (usable once), then sign in."""
    user = user_for_link(token)
    if user is None:
        return render_template("accounts/link_invalid.html"), 404
    form = SetPasswordForm()
    if not form.validate_on_submit():
        return render_template("accounts/set_password.html", form=form, email=user.email), (
            422 if request.method == "POST" else 200)
    set_password(user, form.password.data or "")
    logout_user()
    login_user(user)
    flash("Your password is set; you are signed in.")
    return redirect(url_for("prompts.index"), code=303)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | tuple[str, int]:
    """Who you are, what you have spent this month, and changing your password (which ends your other sessions)."""
    if not accounts_mode():  # one local user and no sign-in: there is no password to change
        if request.method == "POST":
            abort(405)
        return render_template("accounts/account.html", form=None, allowance=spending.allowance(current_user)), 200
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not verify_password(current_user.password_hash, form.current.data or ""):
            form.current.errors = ["That is not your current password."]
        else:
            set_password(current_user, form.password.data or "")
            login_user(current_user)  # this session carries on under the new session version
            flash("Password changed; your other sessions are signed out.")
            return redirect(url_for("accounts.account"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/account.html", form=form, allowance=spending.allowance(current_user)), status
