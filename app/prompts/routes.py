"""Home page: write prompts, add and remove rows in place, submit a batch."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.batches.service import create_batch
from app.prompts.forms import PromptForm, rebuilt_form

bp = Blueprint("prompts", __name__)


def _max_prompts() -> int:
    return current_app.config["MAX_PROMPTS_PER_BATCH"]


def _edited_rows(form: PromptForm) -> PromptForm | None:
    """Apply an 'Add prompt' or 'Remove' press; None when the button pressed was Generate."""
    texts = [entry.data for entry in form.prompts.entries]
    if "add_row" in request.form:
        return rebuilt_form(texts + [""], _max_prompts())
    remove = request.form.get("remove_row", "")
    if remove.isdigit():
        index = int(remove)
        return rebuilt_form(texts[:index] + texts[index + 1:], _max_prompts())
    return None


@bp.route("/", methods=["GET", "POST"])
def index() -> Response | str | tuple[str, int]:
    """Show the prompt form; on submit, edit its rows or queue one generation per prompt."""
    form = PromptForm(max_prompts=_max_prompts())
    if request.method == "POST":
        edited = _edited_rows(form)
        if edited is not None:
            # Row edits re-render the rows renumbered, so no prompt is dropped or overwritten.
            template = "prompts/_prompt_rows.html" if request.headers.get("HX-Request") else "prompts/index.html"
            return render_template(template, form=edited, focus_last=True)
        if form.validate():
            batch = create_batch(form.prompt_texts())
            flash(f"{len(batch.generations)} image{'s' if len(batch.generations) != 1 else ''} queued.")
            return redirect(url_for("batches.show", batch_id=batch.id), code=303)
        return render_template("prompts/index.html", form=form), 422
    return render_template("prompts/index.html", form=form)
