"""The Wildcards page: a user's lists (and those an admin shared), made, changed, deleted, imported and exported."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.models import WildcardList
from app.variations import wildcards
from app.variations.forms import ImportForm, WildcardForm

bp = Blueprint("variations", __name__, url_prefix="/wildcards")


def _page(form: WildcardForm | None = None, upload: ImportForm | None = None, status: int = 200) -> tuple[str, int]:
    """The page: the user's lists, the shared ones, a new list's form and the import form."""
    return render_template("variations/index.html", own=wildcards.own_lists(current_user),
                           shared=wildcards.shared_lists(current_user), form=form or WildcardForm(),
                           upload=upload or ImportForm(), may_share=current_user.is_admin), status


def _refused(form: WildcardForm | ImportForm, exc: wildcards.WildcardInvalid) -> None:
    """Each message next to its field (values of an import: next to the file)."""
    for name, message in exc.fields.items():
        field = getattr(form, name, None) or getattr(form, "file", None)
        field.errors = [*field.errors, message]


@bp.get("/")
def index() -> tuple[str, int]:
    """Your lists and the shared ones."""
    return _page()


@bp.post("/")
def create() -> Response | tuple[str, int]:
    """Save a new list."""
    form = WildcardForm()
    if not form.validate():
        return _page(form, status=422)
    try:
        row = wildcards.save(current_user, form.name.data or "", wildcards.values_from_text(form.values.data or ""),
                             form.shared.data)
    except wildcards.WildcardInvalid as exc:
        _refused(form, exc)
        return _page(form, status=422)
    flash(f"Saved __{row.name}__ ({len(row.values)} values).")
    return redirect(url_for("variations.index"), code=303)


@bp.post("/import")
def import_file() -> Response | tuple[str, int]:
    """A list from a .txt file, one value a line."""
    upload = ImportForm()
    file = request.files.get("file")
    if not upload.validate() or file is None or not file.filename:
        upload.file.errors = ["Choose a .txt file, one value a line."]
        return _page(upload=upload, status=422)
    data = file.read(wildcards.MAX_FILE_BYTES + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or len(data) > wildcards.MAX_FILE_BYTES:
        upload.file.errors = ["The file must be UTF-8 text of at most 256 KB."]
        return _page(upload=upload, status=422)
    name = (upload.name.data or "").strip() or wildcards.name_from_file(file.filename)
    try:
        row = wildcards.save(current_user, name, wildcards.values_from_text(text), upload.shared.data)
    except wildcards.WildcardInvalid as exc:
        _refused(upload, exc)
        return _page(upload=upload, status=422)
    flash(f"Imported __{row.name}__ ({len(row.values)} values).")
    return redirect(url_for("variations.index"), code=303)


def _own_or_404(list_id: int) -> WildcardList:
    row = wildcards.owned(list_id, current_user)
    if row is None:
        abort(404)
    return row


@bp.route("/<int:list_id>", methods=["GET", "POST"])
def edit(list_id: int) -> Response | tuple[str, int] | str:
    """Change one of your lists."""
    row = _own_or_404(list_id)
    form = WildcardForm(data={"name": row.name, "values": wildcards.as_text(row), "shared": row.shared}
                        if request.method == "GET" else None)
    if request.method == "GET" or not form.validate():
        return render_template("variations/edit.html", row=row, form=form, may_share=current_user.is_admin)
    try:
        wildcards.save(current_user, form.name.data or "", wildcards.values_from_text(form.values.data or ""),
                       form.shared.data, existing=row)
    except wildcards.WildcardInvalid as exc:
        _refused(form, exc)
        return render_template("variations/edit.html", row=row, form=form, may_share=current_user.is_admin), 422
    flash(f"Saved __{row.name}__.")
    return redirect(url_for("variations.index"), code=303)


@bp.post("/<int:list_id>/delete")
def delete(list_id: int) -> Response:
    """Delete one of your lists."""
    row = _own_or_404(list_id)
    wildcards.delete(row)
    flash(f"Deleted __{row.name}__.")
    return redirect(url_for("variations.index"), code=303)


@bp.get("/<int:list_id>.txt")
def export(list_id: int) -> Response:
    """A list you may read, as a .txt file (one value a line)."""
    row = wildcards.readable(list_id, current_user)
    if row is None:
        abort(404)
    return Response(wildcards.as_text(row), mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{row.name}.txt"'})
