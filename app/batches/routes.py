"""The live generate page, its poll endpoint, and the JSON status API."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template, request
from werkzeug.wrappers import Response

from app.batches.progress import batch_json, changed_since, progress_of, seen_signature
from app.batches.service import batch_or_none, generations_of
from app.models import Generation

bp = Blueprint("batches", __name__)


def _generations_or_404(batch_id: int) -> list[Generation]:
    """A batch's generations; a batch always has at least one, so none means no such batch."""
    generations = generations_of(batch_id)
    if not generations:
        abort(404)
    return generations


@bp.get("/generate/<int:batch_id>")
def show(batch_id: int) -> str:
    """One card per prompt; htmx keeps them current until every one is final."""
    batch = batch_or_none(batch_id) or abort(404)
    generations = batch.generations
    return render_template("batches/generate.html", batch=batch, generations=generations,
                           progress=progress_of(generations), seen=seen_signature(generations))


@bp.get("/generate/<int:batch_id>/status")
def status(batch_id: int) -> Response | str:
    """Poll target: 204 when nothing changed, else the summary plus the changed cards swapped out of band."""
    generations = _generations_or_404(batch_id)
    seen = request.args.get("seen", "")
    current = seen_signature(generations)
    if seen == current:
        return Response(status=204)
    return render_template("batches/_status.html", batch_id=batch_id, progress=progress_of(generations),
                           seen=current, changed=changed_since(generations, seen))


@bp.get("/api/batches/<int:batch_id>")
def api_status(batch_id: int) -> Response:
    """The batch's status as JSON, generations in prompt order."""
    return jsonify(batch_json(batch_id, _generations_or_404(batch_id)))
