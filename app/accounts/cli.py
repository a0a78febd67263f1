"""`flask users …`: make and manage accounts from the server's shell."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.accounts import deletion
from app.accounts.passwords import password_problem
from app.accounts.users import (
    DEFAULT_CREDITS,
    AccountError,
    create_user,
    list_users,
    password_link,
    require_user,
    set_disabled,
    set_monthly_credits,
)
from app.generations import erasure, spending
from app.text.wording import count_of

users_cli = AppGroup("users", help="Create and manage accounts.")


def _credits(value: str | None) -> float | None:
    """'none' or 'unlimited' means no cap; otherwise a number of at least 0."""
    if value is None or value.strip().lower() in ("none", "unlimited", ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter("use a number of credits, or 'none' for no cap") from None
    if not 0 <= number < 1e9:
        raise click.BadParameter("use a number of credits of at least 0")
    return number


def _link(user) -> str:  # noqa: ANN001
    """A one-time password link, built for PUBLIC_URL since a shell has no request to take the host from."""
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
        return password_link(user)


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


def _account(email: str):  # noqa: ANN202
    """The account with this email, or a clear error and a non-zero exit."""
    try:
        return require_user(email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


@users_cli.command("create")
@click.argument("email")
@click.option("--password", help="The password (otherwise asked twice, or an --invite link is printed).")
@click.option("--admin", is_flag=True, help="An admin sees and manages everything.")
@click.option("--monthly-credits", help="Monthly allowance ('none': no cap; default DEFAULT_MONTHLY_CREDITS).")
@click.option("--invite", is_flag=True, help="Print a one-time link to set the password instead of asking for it.")
def create_command(email: str, password: str | None, admin: bool, monthly_credits: str | None, invite: bool) -> None:
    """Make an account."""
    if password is None and not invite:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Password again")
    if password is not None and (problem := password_problem(password)):
        raise click.BadParameter(problem, param_hint="password")
    credits = _credits(monthly_credits) if monthly_credits is not None else DEFAULT_CREDITS
    try:
        user = create_user(email, password=password, is_admin=admin, monthly_credits=credits)
    except AccountError as exc:
        _fail(exc)
    click.echo(f"Created {'admin' if user.is_admin else 'member'} {user.email}.")
    if invite:
        click.echo(f"One-time link to set the password (send it to them): {_link(user)}")


@users_cli.command("list")
def list_command() -> None:
    """Every account, its role, state, allowance and use this month."""
    month = spending.this_month()
    for user in list_users():
        used = spending.used(spending.user_scope(user.id), month)
        use = (f"{used:g} credits (no cap)" if user.monthly_credits is None
               else f"{used:g} of {user.monthly_credits:g} credits")
        state = "deleting" if user.being_deleted else "disabled" if user.disabled else (
            "invited" if not user.password_hash else "active")
        click.echo(f"{user.email}\t{'admin' if user.is_admin else 'member'}\t{state}\t{use}")


@users_cli.command("set-credits")
@click.argument("email")
@click.argument("credits")
def set_credits_command(email: str, credits: str) -> None:
    """Set a user's monthly allowance ('none' for no cap)."""
    user = _account(email)
    set_monthly_credits(user, _credits(credits))
    click.echo(f"{user.email}: {'no cap' if user.monthly_credits is None else f'{user.monthly_credits:g} credits'}.")


def _set_disabled(email: str, disabled: bool) -> None:
    """Disable (ending all sessions) or enable an account (revoking its API tokens), and say so."""
    try:
        click.echo(set_disabled(_account(email), disabled))
    except AccountError as exc:
        _fail(exc)


@users_cli.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Disable an account and end all its sessions."""
    _set_disabled(email, True)


@users_cli.command("enable")
@click.argument("email")
def enable_command(email: str) -> None:
    """Enable a disabled account again; the API tokens it had are revoked."""
    _set_disabled(email, False)


@users_cli.command("reset-password")
@click.argument("email")
def reset_command(email: str) -> None:
    """Print a one-time link to set a new password."""
    user = _account(email)
    click.echo(_link(user))


@users_cli.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--background", is_flag=True, help="Leave the removal to the workers instead of doing it now.")
def delete_command(email: str, yes: bool, background: bool) -> None:
    """Delete an account and everything it made: files and thumbnails (disk or S3), rows, tokens, spend.

    Run it again to finish a deletion that was interrupted (the workers also resume it by themselves).
    """
    user = _account(email)
    problem = deletion.refusal(user)
    if problem is not None:
        _fail(problem)
    images = erasure.image_count(user.id)
    if not yes:
        click.confirm(f"Delete {user.email} and {count_of(images, 'image')}? This cannot be undone.", abort=True)
    user_id, email = user.id, user.email
    erasure.request(user, queue_job=background)
    if background:
        click.echo(f"{email} is signed out everywhere; the workers remove {count_of(images, 'image')} and the rest.")
        return
    erased = erasure.run(user_id)
    waiting = f"; {count_of(erased.waiting, 'file')} wait for their store to answer" if erased.waiting else ""
    click.echo(f"Deleted {email}: {count_of(erased.images, 'image')} and {count_of(erased.files, 'file')}{waiting}.")
