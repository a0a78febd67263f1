"""Signing in and out, setting a password from a one-time link, the account page, and deleting your account."""

from __future__ import annotations

import math
import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_limiter import RateLimitExceeded
from flask_login import current_user, login_required, logout_user
from werkzeug.wrappers import Response

from app.accounts import deletion, devices, sessions, throttling, webhook_pages
from app.accounts.auth import accounts_mode, safe_next
from app.accounts.forms import ChangePasswordForm, DeleteAccountForm, LoginForm, SetPasswordForm
from app.accounts.passwords import verify_password
from app.accounts.tokens import revoke_all
from app.accounts.users import find_user, has_admin, set_password, user_for_link
from app.extensions import limiter
from app.generations import erasure, spending
from app.models import utcnow
from app.text.wording import count_of

bp = Blueprint("accounts", __name__)
WRONG_CREDENTIALS = "Wrong email or password."


@bp.route("/login", methods=["GET", "POST"])
@throttling.throttled
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
    sessions.begin(user)
    response = redirect(safe_next(request.args.get("next")), code=303)
    devices.remember(response, user.id)
    return response


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
    if not throttling.known_device():  # said to anyone: it only tells a guesser that the owner is not shut out
        message += " A browser you have signed in with before can still sign in now."
    return _login_page(form, 429, message)


@bp.post("/logout")
def logout() -> Response:
    """End this session on the server: the cookie, and any copy of it, is refused from now on."""
    sessions.end_current()
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
    sessions.end_current()  # whoever was signed in on this browser before the link was opened
    set_password(user, form.password.data or "")
    sessions.begin(user)
    flash("Your password is set; you are signed in.")
    response = redirect(url_for("prompts.index"), code=303)
    devices.remember(response, user.id)
    return response


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | tuple[str, int]:
    """Who you are, what you have spent this month, your sessions, and changing your password."""
    if not accounts_mode():  # one local user and no sign-in: there is no password to change
        if request.method == "POST":
            abort(405)
        return render_template("accounts/account.html", form=None, allowance=spending.allowance(current_user),
                               **webhook_pages.section()), 200
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if verify_password(current_user.password_hash, form.current.data or ""):
            return _change_password(form)
        form.current.errors = ["That is not your current password."]
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/account.html", form=form, allowance=spending.allowance(current_user),
                           sessions=sessions.of_user(current_user), this_session_id=sessions.current_id(),
                           **webhook_pages.section()), status


def _change_password(form: ChangePasswordForm) -> Response:
    """Set the new password, which ends every session; this browser carries on in a new one."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    set_password(user, form.password.data or "")
    sessions.begin(user)
    revoked = revoke_all(user) if form.revoke_tokens.data else 0
    tokens = f" and {count_of(revoked, 'API token')} revoked" if revoked else ""
    flash(f"Password changed; your other sessions are signed out{tokens}.")
    return redirect(url_for("accounts.account"), code=303)


@bp.post("/account/sessions/<int:session_id>/end")
@login_required
def end_session(session_id: int) -> Response:
    """Sign out one of your sessions (this one included); another person's session is a 404."""
    ending_this = sessions.current_id() == session_id
    if not sessions.end(current_user, session_id):
        abort(404)
    if ending_this:
        logout_user()
        return redirect(url_for("accounts.login"), code=303)
    flash("That session is signed out.")
    return redirect(url_for("accounts.account", _anchor="sessions"), code=303)


@bp.post("/account/sessions/end-others")
@login_required
def end_other_sessions() -> Response:
    """Sign out everywhere else: every session of yours but this one ends now."""
    this_id = sessions.current_id()
    if this_id is None:
        abort(404)  # AUTH_MODE=none: there are no sessions
    ended = sessions.end_others(current_user, this_id)
    flash(f"Signed out {count_of(ended, 'other session')}." if ended else "You had no other sessions.")
    return redirect(url_for("accounts.account", _anchor="sessions"), code=303)


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete_account() -> Response | tuple[str, int]:
    """Ask for the password, then delete the account in the background and sign out; its data goes within minutes."""
    form, posted = DeleteAccountForm(), request.method == "POST"
    problem = deletion.refusal(current_user)
    if problem is not None:
        return _delete_page(form, problem.status if posted else 200, problem)
    if not form.validate_on_submit():
        return _delete_page(form, 422 if posted else 200)
    try:
        deletion.delete_own_account(current_user, form.password.data or "")
    except deletion.DeletionRefused as exc:
        form.password.errors = [str(exc)]
        return _delete_page(form, 429 if exc.status == 429 else 422)
    logout_user()
    flash("Your account is being deleted: your images, their files and everything else of yours are removed within "
          "minutes. You have been signed out.")
    return redirect(url_for("accounts.login"), code=303)


def _delete_page(form: DeleteAccountForm, status: int,
                 problem: deletion.DeletionRefused | None = None) -> tuple[str, int]:
    """The confirmation: what goes, the password field, or why this account cannot be deleted."""
    return render_template("accounts/confirm_delete.html", form=form, user=current_user, problem=problem,
                           images=erasure.image_count(current_user.id)), status
