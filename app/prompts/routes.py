"""Home page: write prompts, choose options, add and remove rows in place, see the cost, submit a batch."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import ownership, spending
from app.extensions import db
from app.generations.lifecycle import create_batch
from app.models import Generation, parse_id
from app.prompts.cost import batch_cost, current_balance
from app.prompts.forms import PromptForm, rebuilt_form, reused_form

bp = Blueprint("prompts", __name__)


def _form() -> PromptForm:
    """The form bound to this request's data (or empty on GET)."""
    return PromptForm(max_prompts=current_app.config["MAX_PROMPTS_PER_BATCH"])


def _edited_rows(form: PromptForm) -> PromptForm | None:
    """Apply an 'Add prompt' or 'Remove' press; None when the button pressed was Generate."""
    texts = [entry.data for entry in form.prompts.entries]
    if "add_row" in request.form:
        return rebuilt_form(form, texts + [""])
    remove = request.form.get("remove_row", "")
    if remove.isdecimal() and len(remove) < 6:
        index = int(remove)
        return rebuilt_form(form, texts[:index] + texts[index + 1:])
    return None


def _reused() -> PromptForm | None:
    """?reuse=<id>: the form filled from that image, without generating anything."""
    reuse = parse_id(request.args.get("reuse"))
    generation = db.session.scalar(sa.select(Generation).where(
        Generation.id == reuse, ownership.visible(Generation.owner_id))) if reuse is not None else None
    if generation is None:
        return None
    flash(f"Prompt and settings of image {generation.id} are filled in; change anything, then press Generate.")
    return reused_form(generation, current_app.config["MAX_PROMPTS_PER_BATCH"])


def _page(form: PromptForm, status: int = 200) -> tuple[str, int]:
    """The full home page for this form, with what the user has left this month."""
    return render_template("prompts/index.html", form=form, cost=batch_cost(form),
                           allowance=spending.allowance(current_user)), status


@bp.route("/", methods=["GET", "POST"])
def index() -> Response | tuple[str, int]:
    """Show the prompt form; on submit, edit its rows or queue one generation per prompt."""
    if request.method == "GET":
        return _page(_reused() or _form())
    form = _form()
    edited = _edited_rows(form)
    if edited is not None:
        # Row edits re-render the rows renumbered, so no prompt is dropped or overwritten.
        if request.headers.get("HX-Request"):
            return render_template("prompts/_prompt_rows.html", form=edited, focus_last=True,
                                   cost=batch_cost(edited), cost_oob=True), 200
        return _page(edited)
    if not form.validate():
        return _page(form, 422)
    try:
        batch = create_batch(current_user, form.prompt_texts(), form.options())
    except spending.OverAllowance as exc:
        # Next to the Generate button, with every prompt and option as typed.
        form.spending_error = str(exc)
        return _page(form, 402)
    count = len(batch.generations)
    flash(f"{count} image{'s' if count != 1 else ''} queued.")
    return redirect(url_for("batches.show", batch_id=batch.id), code=303)


@bp.post("/cost")
def cost() -> str:
    """The batch's price for the prompts and model currently in the form (htmx refreshes it as they change)."""
    return render_template("prompts/_cost.html", cost=batch_cost(_form()))


@bp.get("/balance")
def balance() -> str:
    """The account's balance in credits, loaded after the page so a slow API never delays it."""
    return render_template("prompts/_balance.html", balance=current_balance())
