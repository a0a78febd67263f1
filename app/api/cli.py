"""`flask tokens …`: personal access tokens from the shell."""

from __future__ import annotations

from typing import NoReturn

import click
from flask.cli import AppGroup

from app.accounts.users import AccountError, require_user
from app.api import tokens
from app.models import User, as_utc, utcnow

tokens_cli = AppGroup("tokens", help="Make, list and revoke API tokens.")


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _user(email: str) -> User:
    try:
        return require_user(email)
    except AccountError as exc:
        _fail(str(exc))


@tokens_cli.command("create")
@click.argument("email")
@click.argument("name")
@click.option("--expires-days", type=int, help="Days until it stops working (default: never).")
def create_token_command(email: str, name: str, expires_days: int | None) -> None:
    """Make a token for EMAIL named NAME and print its secret, once."""
    try:
        new = tokens.create_token(_user(email), name, expires_days)
    except tokens.TokenError as exc:
        _fail(str(exc))
    expiry = f"expires {as_utc(new.token.expires_at):%Y-%m-%d %H:%M} UTC" if new.token.expires_at else "never expires"
    click.echo(f"Token {new.token.name!r} for {email} ({expiry}). It is shown only now:", err=True)
    click.echo(new.secret)


@tokens_cli.command("revoke")
@click.argument("email")
@click.argument("name")
def revoke_token_command(email: str, name: str) -> None:
    """Revoke EMAIL's live token named NAME."""
    token = tokens.live_token(_user(email), name.strip())
    if token is None:
        _fail(f"{email} has no live token named {name!r}.")
    tokens.revoke(token)
    click.echo(f"Revoked {name!r} of {email}.")


@tokens_cli.command("list")
@click.argument("email")
def list_tokens_command(email: str) -> None:
    """EMAIL's tokens: name, prefix, state and last use."""
    now = utcnow()
    for token in tokens.user_tokens(_user(email)):
        state = "revoked" if token.revoked_at else ("active" if token.is_live(now) else "expired")
        used = f"{as_utc(token.last_used_at):%Y-%m-%d %H:%M} UTC" if token.last_used_at else "never used"
        click.echo(f"{token.name}\t{token.prefix}…\t{state}\t{used}")
