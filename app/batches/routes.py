"""The live generate page (a grid batch drawn as its grid), its poll endpoint, card actions, the batch ZIP and the
grid's PNG (the JSON API is app/api/)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, get_flashed_messages, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.accounts.auth import sign_in_wall
from app.batches.charges import charges_of
from app.batches.progress import Progress, changed_since, progress_of, seen_signature
from app.batches.queries import batch_has_grid, card_states, generations_by_id, generations_of
from app.batches.retries import retry_failed
from app.batches.titles import batch_title
from app.generations import lifecycle
from app.generations.spending import OverAllowance
from app.media.archive import batch_zip_response
from app.models import Generation
from app.services import services
from app.text.wording import count_of
from app.variations.grid_image import render_grid
from app.variations.grids import Grid, tables

bp = Blueprint("batches", __name__)
SUBMITTED = "submitted"  # the flash category of the form's "9 images queued." (app/prompts/routes.py)


def _generations_or_404(batch_id: int) -> list[Generation]:
    """A batch's generations the user may see; a batch always has at least one, so none means 404."""
    generations = generations_of(batch_id, ownership.visible(Generation.owner_id))
    if not generations:
        abort(404)
    return generations


@bp.get("/generate/<int:batch_id>")
def show(batch_id: int) -> str:
    """One card per prompt; htmx keeps them current until every one is final."""
    generations = _generations_or_404(batch_id)
    progress = progress_of(generations)
    grid = generations[0].batch.grid
    return render_template("batches/generate.html", batch_id=batch_id, created_at=generations[0].created_at,
                           title=batch_title([g.prompt for g in generations]), generations=generations,
                           progress=progress, charges=charges_of(generations), seen=seen_signature(generations),
                           announcement=_announcement(progress), has_grid=grid is not None,
                           grid_tables=tables(Grid.from_json(grid), generations, lambda g: g.cell) if grid else None)


def _announcement(progress: Progress) -> str:
    """The flashed messages, for the progress line (the next change replaces it); "9 images queued." only while
    all nine still wait, so it never sits beside "2 generating, 7 queued"."""
    still_true = progress.running == 0 and progress.finished == 0
    return " ".join(text for category, text in get_flashed_messages(with_categories=True)
                    if category != SUBMITTED or still_true)


def _card_states_or_404(batch_id: int) -> list[sa.Row] | Response:
    """The poll's one query, the session checked inside it; when it finds nothing, the ordinary checks say why."""
    visible = ownership.session_visible(Generation.owner_id)
    states = card_states(batch_id, visible) if visible is not None else []
    if states:
        return states
    refused = sign_in_wall()  # skipped before this view (auth.SIGN_IN_CHECKED_BY_VIEW), so applied here
    if refused is not None:
        return refused
    states = card_states(batch_id, ownership.visible(Generation.owner_id))
    if not states:
        abort(404)
    return states


@bp.get("/generate/<int:batch_id>/status")
def status(batch_id: int) -> Response | str:
    """Poll target: 204 when nothing changed (one query), else the summary plus the changed cards out of band."""
    states = _card_states_or_404(batch_id)
    if isinstance(states, Response):
        return states
    seen = request.args.get("seen", "")
    current = seen_signature(states)
    if seen == current:
        return Response(status=204)
    changed = generations_by_id([state.id for state in changed_since(states, current, seen)])
    return render_template("batches/_status.html", batch_id=batch_id, progress=progress_of(states),
                           charges=charges_of(states), seen=current, changed=changed,
                           has_grid=changed[0].batch.grid is not None if changed else batch_has_grid(batch_id))


def _after_action(batch_id: int, message: str) -> Response | str:
    """htmx: the progress and every card, out of band (polling resumes if needed); else back to the page."""
    if request.headers.get("HX-Request"):
        generations = generations_of(batch_id, ownership.visible(Generation.owner_id))
        return render_template("batches/_status.html", batch_id=batch_id, progress=progress_of(generations),
                               charges=charges_of(generations), seen=seen_signature(generations),
                               changed=generations, progress_oob=True, announcement=message,
                               has_grid=bool(generations) and generations[0].batch.grid is not None)
    flash(message)
    return redirect(url_for("batches.show", batch_id=batch_id), code=303)


@bp.post("/generations/<int:generation_id>/cancel")
def cancel_generation(generation_id: int) -> Response | str:
    """Cancel one queued or running generation; a running one's late result is discarded."""
    generation = ownership.generation_or_404(generation_id)
    canceled = lifecycle.cancel_generation(generation_id)
    return _after_action(generation.batch_id, "Canceled." if canceled else "That image had already finished.")


@bp.post("/generate/<int:batch_id>/cancel")
def cancel_batch(batch_id: int) -> Response | str:
    """Cancel every unfinished generation of the batch."""
    _generations_or_404(batch_id)
    count = lifecycle.cancel_batch(batch_id)
    return _after_action(batch_id, f"Canceled {count_of(count, 'image')}.")


@bp.post("/generations/<int:generation_id>/retry")
def retry_generation(generation_id: int) -> Response | str:
    """Queue a new attempt for a failed, filtered or canceled card, with the same options."""
    generation = ownership.generation_or_404(generation_id)
    try:
        retried = lifecycle.retry(generation_id)
    except OverAllowance as exc:
        return _after_action(generation.batch_id, str(exc))
    return _after_action(generation.batch_id, "Queued again." if retried else "Only a failed, filtered or "
                         "canceled image can be retried.")


@bp.post("/generate/<int:batch_id>/retry-failed")
def retry_failed_cards(batch_id: int) -> Response | str:
    """Queue every failed card again, each reserving its cost; none when the allowance cannot cover them all."""
    return _after_action(batch_id, retry_failed(_generations_or_404(batch_id)))


@bp.get("/generate/<int:batch_id>/images.zip")
def download_zip(batch_id: int) -> Response:
    """Every image of the batch in one ZIP, streamed as it is built."""
    generations = [g for g in _generations_or_404(batch_id) if g.has_image]
    if not generations:
        abort(404)
    return batch_zip_response(batch_id, generations, services().stores)


@bp.get("/generate/<int:batch_id>/grid.png")
def grid_image(batch_id: int) -> Response:
    """The batch's comparison grid as one labelled PNG (cells without an image say why)."""
    generations = _generations_or_404(batch_id)
    grid = generations[0].batch.grid
    if grid is None:
        abort(404)
    data = render_grid(Grid.from_json(grid), generations, services().stores)
    return Response(data, mimetype="image/png",
                    headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-grid.png"'})
