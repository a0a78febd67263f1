"""Home page: write prompts, choose options, add and remove rows in place, see the cost, submit a batch."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.extensions import db
from app.generations import spending
from app.generations.lifecycle import PriceChanged, create_batch
from app.generations.seeds import random_seed
from app.models import Generation, parse_id
from app.prompts import memory
from app.prompts.cost import batch_cost, current_balance, price_table, shown_price
from app.prompts.forms import PromptForm, rebuilt_form, reused_form
from app.prompts.recent import recent_prompts
from app.text.wording import count_of, shortened

bp = Blueprint("prompts", __name__)
CONFIRM = "Press Generate again to confirm."


def _form(data: dict[str, object] | None = None) -> PromptForm:
    """The form bound to this request's data (or `data`, then the defaults, on GET)."""
    return PromptForm(max_prompts=current_app.config["MAX_PROMPTS_PER_BATCH"], data=data, owner=current_user,
                      max_images=current_app.config["MAX_IMAGES_PER_BATCH"])


def _edited(form: PromptForm) -> tuple[str, PromptForm] | None:
    """Apply an 'Add prompt', 'Remove' or 'Random' press as (what changed, new form); None for Generate."""
    texts = [entry.data for entry in form.prompts.entries]
    if "add_row" in request.form:
        return "added", rebuilt_form(form, texts + [""])
    if "roll_seed" in request.form:
        return "rolled", rebuilt_form(form, texts, seed=random_seed())
    remove = request.form.get("remove_row", "")
    if remove.isdecimal() and len(remove) < 6:
        index = int(remove)
        return "removed", rebuilt_form(form, texts[:index] + texts[index + 1:])
    return None


def _reused() -> PromptForm | None:
    """?reuse=<id>: the form filled from that image, without generating anything; a word when there is none."""
    asked = request.args.get("reuse", "")
    reuse = parse_id(asked)
    generation = db.session.scalar(sa.select(Generation).where(
        Generation.id == reuse, ownership.visible(Generation.owner_id))) if reuse is not None else None
    if generation is None:
        if asked:  # someone else's image reads exactly like a deleted one
            flash(f"Image {shortened(asked, 20)} was not found (it may have been deleted), so nothing was filled "
                  "in.", "warning")
        return None
    flash(f"Prompt and settings of image {generation.id} are filled in; change anything, then press Generate.")
    return reused_form(generation, current_app.config["MAX_PROMPTS_PER_BATCH"])


def _page(form: PromptForm, status: int = 200) -> tuple[str, int]:
    """The full home page for this form, with what the user has left this month and their recent prompts."""
    recent = recent_prompts(current_user.id) if current_user.is_authenticated else []
    return render_template("prompts/index.html", form=form, cost=batch_cost(form), prices=price_table(),
                           recent=recent, allowance=spending.allowance(current_user),
                           shows_balance=ownership.sees_install_account()), status


def _row_edit(change: str, form: PromptForm) -> tuple[str, int]:
    """An in-place row edit: only the added row (or nothing, for a removed one) and the add button."""
    return render_template(f"prompts/_row_{change}.html", form=form, oob=True), 200


def _submit(form: PromptForm) -> Response | tuple[str, int]:
    """Queue the batch at the price the page showed, keeping its options for the next form; else say why not."""
    try:
        plan = form.plan
        batch = create_batch(current_user, form.prompt_texts(), form.options(), images_per_prompt=form.per_prompt,
                             expected_credits=shown_price(request.form.get("expected_credits")),
                             before_commit=lambda _batch: memory.remember(current_user, form),
                             images=plan.as_rows() if plan else None,
                             grid=plan.grid.as_json() if plan and plan.grid else None)
    except PriceChanged as exc:
        # Nothing was charged: the same form again, now showing the new price, so a second press confirms it.
        form.spending_error = f"{exc} {CONFIRM}"
        return _page(form, 409)
    except spending.OverAllowance as exc:
        # Next to the Generate button, with every prompt and option as typed.
        form.spending_error = str(exc)
        return _page(form, 402)
    # The category lets the batch page drop the notice once an image has started (batches/routes.SUBMITTED).
    flash(f"{count_of(len(batch.generations), 'image')} queued.", "submitted")
    return redirect(url_for("batches.show", batch_id=batch.id), code=303)


@bp.route("/", methods=["GET", "POST"])
def index() -> Response | tuple[str, int]:
    """Show the prompt form (with the last batch's options); on submit, edit its rows or queue every prompt's images."""
    if request.method == "GET":
        return _page(_reused() or _form(memory.recall(current_user)))
    form = _form()
    edited = _edited(form)
    if edited is not None:
        change, new_form = edited
        # Rows already on the page stay as they are (typed text, dragged height); only what changed is sent.
        if request.headers.get("HX-Request") and change in ("added", "removed"):
            return _row_edit(change, new_form)
        return _page(new_form)
    if not form.validate():
        return _page(form, 422)
    return _submit(form)


@bp.post("/preview")
def preview() -> str:
    """What the form as typed will make: its count and exact price, and its first prompts, or why it cannot."""
    form = _form()
    form.validate()
    return render_template("prompts/_preview.html", form=form, cost=batch_cost(form), prices=price_table(),
                           oob=True)


@bp.get("/balance")
def balance() -> str:
    """The Stability account's credits, for admins only (it is the install's); a member gets their own allowance."""
    if not ownership.sees_install_account():
        return render_template("accounts/_allowance.html", allowance=spending.allowance(current_user))
    # Loaded after the page, so a slow API never delays it.
    return render_template("prompts/_balance.html", balance=current_balance())
