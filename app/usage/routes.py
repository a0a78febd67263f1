"""/admin/usage (everyone's, with the month's projection against the allowances and the Stability balance),
/admin/usage.csv, and /account/usage ("My usage")."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.accounts.admin import admin_required
from app.accounts.users import list_users
from app.generations import spending
from app.models import utcnow
from app.providers.base import GenerationError
from app.services import services
from app.usage import charts, totals

bp = Blueprint("usage", __name__)
CSV_COLUMNS = ("day", "user", "model", "images", "credits", "refunded_credits")


def _period() -> tuple[totals.Period, str | None]:
    """The period asked for, or this month so far with why the request's dates were not taken."""
    today = utcnow().date()
    try:
        return totals.parse_period(request.args.get("from"), request.args.get("to"), today), None
    except totals.PeriodInvalid as exc:
        return totals.parse_period(None, None, today), str(exc)


def _balance() -> tuple[float | None, str | None]:
    """The Stability account's credits, or None and why not."""
    stability = services().stability
    if stability is None:
        return None, "No STABILITY_API_KEY is set: the offline demo provider costs nothing."
    try:
        return stability.balance(), None
    except GenerationError as exc:
        return None, f"The balance could not be read: {exc.reason}"


def _allowances() -> float | None:
    """The sum of every active account's monthly allowance, or None if any account has no cap."""
    caps = [user.monthly_credits for user in list_users() if not user.disabled]
    return None if any(cap is None for cap in caps) else float(sum(caps))  # type: ignore[arg-type]


@bp.get("/admin/usage")
@admin_required
def admin_usage() -> tuple[str, int]:
    """Credits by day stacked by user and by model, the month against allowances and balance, failed and refunded."""
    period, problem = _period()
    rows = totals.usage_rows(period)
    balance, balance_problem = _balance()
    projection = totals.month_projection(utcnow().date())
    return render_template(
        "usage/admin.html", period=period, problem=problem, rows=rows, total=totals.grand_total(rows),
        by_user=totals.totals_by(rows, "user"), by_model=totals.totals_by(rows, "model"),
        user_chart=charts.stacked_by(rows, period.days, "user", "Credits per day, by user"),
        model_chart=charts.stacked_by(rows, period.days, "model", "Credits per day, by model"),
        projection=projection, balance=balance, balance_problem=balance_problem, allowances=_allowances(),
        install_limit=current_app.config["MONTHLY_CREDIT_LIMIT"],
        counted=spending.used(spending.INSTALL_SCOPE, projection.month)), 422 if problem else 200


@bp.get("/admin/usage.csv")
@admin_required
def admin_usage_csv() -> Response:
    """One row per day, user (email) and model: images, credits charged, credits refunded."""
    period, problem = _period()
    if problem:
        return Response(problem + "\n", status=400, mimetype="text/plain")
    return _csv(totals.usage_rows(period), f"usage-{period.start}-{period.end}.csv")


@bp.get("/account/usage")
@login_required
def my_usage() -> tuple[str, int]:
    """Your own credits by day and model, and this month against your allowance."""
    period, problem = _period()
    rows = totals.usage_rows(period, owner_id=current_user.id)
    return render_template(
        "usage/mine.html", period=period, problem=problem, rows=rows, total=totals.grand_total(rows),
        by_model=totals.totals_by(rows, "model"),
        model_chart=charts.stacked_by(rows, period.days, "model", "Your credits per day, by model"),
        projection=totals.month_projection(utcnow().date(), owner_id=current_user.id),
        allowance=spending.allowance(current_user)), 422 if problem else 200


@bp.get("/account/usage.csv")
@login_required
def my_usage_csv() -> Response:
    """Your own usage, in the admin CSV's columns."""
    period, problem = _period()
    if problem:
        return Response(problem + "\n", status=400, mimetype="text/plain")
    return _csv(totals.usage_rows(period, owner_id=current_user.id), f"my-usage-{period.start}-{period.end}.csv")


def _csv(rows: list[totals.UsageRow], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row.day.isoformat(), _cell(row.user), row.model, row.images, f"{row.credits:g}",
                         f"{row.refunded_credits:g}"])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _cell(text: str) -> str:
    """A value a spreadsheet will not run as a formula (an email can start with '=' or '+')."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
