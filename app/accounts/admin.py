"""The admin page /admin/users: invite people, set allowances, disable or delete accounts, reset passwords, see
spend."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import deletion
from app.accounts.forms import CreateUserForm, CreditsForm
from app.accounts.users import (
    DEFAULT_CREDITS,
    AccountError,
    create_user,
    list_users,
    password_link,
    set_disabled,
    set_monthly_credits,
)
from app.extensions import db
from app.generations import erasure, spending
from app.models import User

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view: Callable) -> Callable:
    """Admins only; to anyone else the page does not exist."""
    @wraps(view)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not (current_user.is_authenticated and current_user.is_admin):
            abort(404)
        return view(*args, **kwargs)
    return wrapper


def _page(form: CreateUserForm | None = None, link: str | None = None, link_for: str | None = None,
          status: int = 200) -> tuple[str, int]:
    month = spending.this_month()
    users = list_users()
    used = {user.id: spending.used(spending.user_scope(user.id), month) for user in users}
    return render_template("accounts/admin_users.html", users=users, used=used, month=month,
                           total=spending.used(spending.INSTALL_SCOPE, month), form=form or CreateUserForm(),
                           link=link, link_for=link_for, credits_form=CreditsForm()), status


def _user_or_404(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


@bp.get("/users")
@admin_required
def users() -> tuple[str, int]:
    """Every account with its role, state, allowance and spend this month."""
    return _page()


@bp.post("/users")
@admin_required
def create() -> tuple[str, int]:
    """Invite someone: the account waits for its one-time link, shown here once."""
    form = CreateUserForm()
    if not form.validate_on_submit():
        return _page(form, status=422)
    try:
        credits = form.monthly_credits.data
        # The form's hint: empty means the install's default, not "no cap".
        user = create_user(form.email.data or "", is_admin=form.is_admin.data,
                           monthly_credits=DEFAULT_CREDITS if credits is None else credits)
    except AccountError as exc:
        form.email.errors = [str(exc)]
        return _page(form, status=422)
    return _page(link=password_link(user), link_for=user.email, status=201)


@bp.post("/users/<int:user_id>/credits")
@admin_required
def credits(user_id: int) -> Response | tuple[str, int]:
    """Change a user's monthly allowance (empty: no cap)."""
    user = _user_or_404(user_id)
    form = CreditsForm()
    if not form.validate_on_submit():
        flash(f"{user.email}: " + " ".join(form.monthly_credits.errors))
        return redirect(url_for("admin.users"), code=303)
    set_monthly_credits(user, form.monthly_credits.data)
    flash(f"{user.email}: monthly allowance updated.")
    return redirect(url_for("admin.users"), code=303)


@bp.post("/users/<int:user_id>/disable")
@admin_required
def disable(user_id: int) -> Response:
    """Disable an account (signing it out everywhere) or enable it again (revoking the API tokens it had)."""
    user = _user_or_404(user_id)
    if user.id == current_user.id:
        flash("You cannot disable your own account.")
        return redirect(url_for("admin.users"), code=303)
    enable = request.form.get("enable") == "1"
    try:
        flash(set_disabled(user, not enable))
    except AccountError as exc:
        flash(str(exc))
    return redirect(url_for("admin.users"), code=303)


@bp.get("/users/<int:user_id>/delete")
@admin_required
def confirm_delete(user_id: int) -> str:
    """Ask before deleting an account, saying what goes with it."""
    user = _user_or_404(user_id)
    return render_template("accounts/confirm_delete.html", form=None, user=user,
                           problem=deletion.admin_refusal(current_user, user), images=erasure.image_count(user.id))


@bp.post("/users/<int:user_id>/delete")
@admin_required
def delete(user_id: int) -> Response:
    """Delete an account: signed out at once, its images, files and rows removed in the background."""
    user = _user_or_404(user_id)
    try:
        deletion.delete_for_admin(current_user, user)
    except deletion.DeletionRefused as exc:
        flash(f"{user.email}: {exc}")
        return redirect(url_for("admin.users"), code=303)
    flash(f"{user.email} is being deleted: signed out everywhere, their images and files removed within minutes.")
    return redirect(url_for("admin.users"), code=303)


@bp.post("/users/<int:user_id>/reset")
@admin_required
def reset(user_id: int) -> tuple[str, int]:
    """A one-time link to set a new password; the old password keeps working until it is used."""
    user = _user_or_404(user_id)
    return _page(link=password_link(user), link_for=user.email)
