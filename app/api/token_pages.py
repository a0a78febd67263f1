"""/account/tokens: make personal access tokens (each secret shown once), see when each was used, revoke them."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.accounts import tokens
from app.accounts.auth import accounts_mode
from app.api.forms import TokenForm
from app.extensions import db
from app.models import ApiToken, utcnow

bp = Blueprint("tokens", __name__, url_prefix="/account/tokens")


def _page(form: TokenForm | None = None, new: tokens.NewToken | None = None, status: int = 200) -> Response:
    """The list of the user's tokens; a secret just made is on this one answer only, never cached."""
    html = render_template("api/tokens.html", form=form or TokenForm(), new=new, now=utcnow(),
                           tokens=tokens.user_tokens(current_user), accounts=accounts_mode())
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@login_required
def index() -> Response:
    """Your tokens: name, prefix, created, expiry, last use, and a Revoke button each."""
    return _page()


@bp.post("")
@login_required
def create() -> Response:
    """Make a token and show its secret, once."""
    if not accounts_mode():
        abort(404)  # AUTH_MODE=none: the API takes no token, and one made now would open it once accounts are on
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(form, status=422)
    try:
        new = tokens.create_token(current_user, form.name.data or "", form.expires_days.data)
    except tokens.TokenError as exc:
        form.name.errors = [str(exc)]
        return _page(form, status=422)
    return _page(TokenForm(formdata=None), new=new, status=201)  # an empty form for the next one


@bp.post("/<int:token_id>/revoke")
@login_required
def revoke(token_id: int) -> Response:
    """Revoke one of your tokens; it stops working at once."""
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == current_user.id))
    if token is None:
        abort(404)
    tokens.revoke(token)
    flash(f"Token {token.name!r} is revoked; requests made with it are refused from now on.")
    return redirect(url_for("tokens.index"), code=303)
