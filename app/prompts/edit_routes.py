"""An operation on one image: its form (pre-filled from the image, priced, with the allowance), the one-click Vary
and Upscale, and the submit that queues it as a batch, landing on that batch's page."""

from __future__ import annotations

from contextlib import closing

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.generations import spending
from app.generations.edits import EditRefused, SourceNotFound, create_edit_batch, price_of_edit
from app.generations.lifecycle import PriceChanged
from app.models import Generation
from app.prompts import edit_form
from app.prompts.cost import edit_cost, shown_price
from app.prompts.edit_form import EditForm
from app.providers.operations import CONFIRM_AT_CREDITS, Operation
from app.text.wording import count_of

bp = Blueprint("edits", __name__)


def _source_and_operation(generation_id: int, operation: str) -> tuple[Generation, Operation]:
    """The user's own finished image and a known operation; anything else is a 404."""
    source = ownership.generation_or_404(generation_id)
    op = edit_form.operation_or_none(operation)
    if op is None or not source.has_image or source.owner_id != current_user.id:
        abort(404)  # an admin sees others' images but edits only their own: each batch is its owner's spending
    return source, op


def _page(edit: EditForm, status: int = 200) -> tuple[str, int]:
    """The operation's page: the image (with the painter or the pad), the fields, the price and the allowance."""
    try:
        cost = edit_cost(edit.operation.name, edit.params())
    except EditRefused:
        cost = edit_cost(edit.operation.name, {})
    return render_template("prompts/edit.html", edit=edit, cost=cost, prices={},
                           allowance=spending.allowance(current_user),
                           confirm_at=CONFIRM_AT_CREDITS), status


@bp.get("/images/<int:generation_id>/edit/<operation>")
def form(generation_id: int, operation: str) -> tuple[str, int]:
    """The operation's form, pre-filled from the image (?field=value overrides one, as a changed model does)."""
    source, op = _source_and_operation(generation_id, operation)
    return _page(edit_form.with_overrides(edit_form.prefilled(source, op), request.args))


def _mask() -> bytes | None:
    """The painted mask's PNG, when the form sent one."""
    sent = request.files.get("mask")
    if sent is None:
        return None
    with closing(sent):
        return sent.read() or None


def _needs_confirming(edit: EditForm) -> bool:
    """An expensive operation not yet confirmed: the form comes back once, saying so, and the next press sends it."""
    try:
        price = price_of_edit(edit.operation.name, edit.params())
    except EditRefused:
        return False  # the submit says what is wrong
    if price < CONFIRM_AT_CREDITS or request.form.get("confirmed") == "1":
        return False
    edit.confirming = True
    return True


@bp.post("/images/<int:generation_id>/edit/<operation>")
def submit(generation_id: int, operation: str) -> Response | tuple[str, int]:
    """Queue the operation on the image at the price shown; else the form again, each refusal by its field."""
    source, op = _source_and_operation(generation_id, operation)
    one_click = request.form.get("quick") == "1"
    edit = edit_form.quick(source, op) if one_click else edit_form.posted(source, op, request.form)
    if not one_click and _needs_confirming(edit):
        return _page(edit)
    try:
        batch = create_edit_batch(current_user, [source.id], op.name, edit.params(), mask_png=_mask(),
                                  expected_credits=shown_price(request.form.get("expected_credits")))
    except EditRefused as exc:
        edit.refuse(exc.field, exc.message)
        return _page(edit, 422)
    except PriceChanged as exc:
        edit.refuse(None, f"{exc} Press {op.label} again to confirm.")
        return _page(edit, 409)
    except spending.OverAllowance as exc:
        edit.refuse(None, str(exc))
        return _page(edit, 402)
    except SourceNotFound:
        abort(404)
    flash(f"{op.label}: {count_of(len(batch.generations), 'image')} queued.", "submitted")
    target = url_for("batches.show", batch_id=batch.id)
    if request.headers.get("HX-Request"):
        return Response(status=204, headers={"HX-Redirect": target})
    return redirect(target, code=303)
