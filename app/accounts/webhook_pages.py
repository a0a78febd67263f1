"""/account/webhooks: add endpoints (the secret shown once), rotate, enable, remove, and the deliveries' log with
"Send again"."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.accounts.forms import WebhookForm
from app.models import WebhookEndpoint
from app.webhooks import delivery, endpoints

bp = Blueprint("webhooks", __name__, url_prefix="/account/webhooks")


def section(form: WebhookForm | None = None) -> dict[str, object]:
    """What the webhooks section of a page shows: the endpoints, their latest deliveries, the form."""
    return {"webhook_form": form or WebhookForm(formdata=None), "webhook_endpoints": endpoints.of_user(current_user),
            "webhook_deliveries": endpoints.deliveries(current_user)}


def _page(form: WebhookForm | None = None, secret_for: WebhookEndpoint | None = None, secret: str | None = None,
          status: int = 200) -> Response:
    """The webhooks page; a secret just made is on this one answer only, never cached."""
    html = render_template("accounts/webhooks.html", new_secret=secret, secret_for=secret_for, **section(form))
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    return endpoints.owned(current_user, endpoint_id) or abort(404)


@bp.get("")
@login_required
def index() -> Response:
    """Your endpoints, each with its events and state, and the latest deliveries."""
    return _page()


@bp.post("")
@login_required
def create() -> Response:
    """Add an endpoint (refused for private addresses) and show its signing secret, once."""
    form = WebhookForm()
    if not form.validate_on_submit():
        return _page(form, status=422)
    try:
        endpoint = endpoints.create(current_user, form.url.data or "", form.events.data or [], form.body_format.data)
    except endpoints.EndpointRefused as exc:
        getattr(form, exc.field).errors = [str(exc)]
        return _page(form, status=422)
    return _page(secret_for=endpoint, secret=endpoint.secret, status=201)


@bp.post("/<int:endpoint_id>/rotate")
@login_required
def rotate(endpoint_id: int) -> Response:
    """A new secret for the endpoint, shown once; the old one no longer signs anything."""
    endpoint = _endpoint_or_404(endpoint_id)
    return _page(secret_for=endpoint, secret=endpoints.rotate(endpoint))


@bp.post("/<int:endpoint_id>/enable")
@login_required
def enable(endpoint_id: int) -> Response:
    """Turn back on an endpoint that was disabled after a day of failures."""
    endpoints.enable(_endpoint_or_404(endpoint_id))
    flash("The endpoint is enabled again.")
    return redirect(url_for("webhooks.index"), code=303)


@bp.post("/<int:endpoint_id>/delete")
@login_required
def delete(endpoint_id: int) -> Response:
    """Remove the endpoint and its deliveries."""
    endpoints.remove(_endpoint_or_404(endpoint_id))
    flash("The endpoint is removed; nothing more is sent to it.")
    return redirect(url_for("webhooks.index"), code=303)


@bp.post("/deliveries/<int:delivery_id>/resend")
@login_required
def resend(delivery_id: int) -> Response:
    """Send a delivery again, with a fresh set of attempts."""
    record = endpoints.owned_delivery(current_user, delivery_id) or abort(404)
    if delivery.send_again(record):
        flash(f"Delivery {record.id} ({record.event}) is queued to be sent again.")
    else:
        flash(f"Delivery {record.id} is being sent right now; look again in a moment.")
    return redirect(url_for("webhooks.index", _anchor="deliveries"), code=303)
