"""Where the credits went: the usage pages' totals equal the stored charges per user and model (several users,
refunds, failures, cancels, several days), the CSV carries the same numbers, the month's projection, My usage shows
only your own, and only admins see /admin/usage."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from factories import advance, make_batch, make_user
from tests_support import sign_in

from app.extensions import db
from app.generations import spending
from app.models import Generation, User, utcnow
from app.usage import charts, totals

TODAY = utcnow().date()
YESTERDAY = datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)


@pytest.fixture
def spent(make_app):
    """Three members' batches on two models over two days: made, failed (refunded), canceled queued (refunded)."""
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "admin@example.com", admin=True)
    for email in ("ada@example.com", "bob@example.com", "cy@example.com"):
        make_user(app, email, monthly_credits=500)
    plan = [("ada@example.com", "core", ["succeeded", "succeeded", "failed"], None),
            ("ada@example.com", "ultra", ["succeeded", "canceled"], YESTERDAY),
            ("bob@example.com", "ultra", ["filtered", "failed", "failed"], None),
            ("bob@example.com", "core", ["succeeded"], YESTERDAY),
            ("cy@example.com", "sd3.5-large", ["succeeded", "succeeded"], None)]
    for email, model, outcomes, at in plan:
        _, ids = make_batch(app, *[f"prompt {n}" for n in range(len(outcomes))], owner_email=email, model=model,
                            enqueue=False, at=at)
        for generation_id, outcome in zip(ids, outcomes, strict=True):
            advance(app, generation_id, outcome)
    return app


def _stored(app, key):
    """The charges as the rows hold them, summed by hand: (credits not refunded, credits refunded) per key."""
    sums = defaultdict(lambda: [0.0, 0.0])
    with app.app_context():
        for generation, email in db.session.execute(sa.select(Generation, User.email).join(User)):
            name = email if key == "user" else generation.model
            sums[name][1 if generation.refunded else 0] += generation.credits
    return {name: tuple(values) for name, values in sums.items()}


def _table(page, heading):
    """The totals table under a heading: {name: (credits charged, credits refunded)}."""
    section = page.split(f"<h2>{heading}</h2>", 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr><td>([^<]+)</td><td>\d+</td><td>([\d.]+)</td><td>\d+</td><td>([\d.]+)</td></tr>", section)
    return {name: (float(credits), float(refunded)) for name, credits, refunded in cells}


def _admin(app):
    client = app.test_client()
    sign_in(client, "admin@example.com")
    return client


def test_the_usage_page_totals_equal_the_stored_charges_per_user_and_model(spent):
    page = _admin(spent).get("/admin/usage").get_data(as_text=True)
    by_user, by_model = _table(page, "By user"), _table(page, "By model")
    assert by_user == _stored(spent, "user") and by_model == _stored(spent, "model")
    # ada: 2 core made (3 each) + 1 ultra made (8); her failed core and canceled ultra came back.
    assert by_user["ada@example.com"] == (14.0, 11.0)
    assert by_user["bob@example.com"] == (11.0, 16.0)  # a filtered ultra is charged; two failed ones are not
    assert 'class="usage-total-credits">38<' in page and 'class="usage-total-refunded">27<' in page
    assert page.count("<svg") == 2 and "<script" not in page.split("</head>", 1)[1]


def test_the_csv_has_one_row_per_day_user_and_model_with_the_same_numbers(spent):
    answer = _admin(spent).get(f"/admin/usage.csv?from={TODAY - timedelta(days=1)}&to={TODAY}")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert list(rows[0]) == ["day", "user", "model", "images", "credits", "refunded_credits"]
    assert {(r["day"], r["user"], r["model"]) for r in rows} == {
        (str(TODAY), "ada@example.com", "core"), (str(TODAY - timedelta(days=1)), "ada@example.com", "ultra"),
        (str(TODAY), "bob@example.com", "ultra"), (str(TODAY - timedelta(days=1)), "bob@example.com", "core"),
        (str(TODAY), "cy@example.com", "sd3.5-large")}
    for key in ("user", "model"):
        summed = defaultdict(lambda: [0.0, 0.0])
        for r in rows:
            summed[r[key]][0] += float(r["credits"])
            summed[r[key]][1] += float(r["refunded_credits"])
        assert {name: tuple(v) for name, v in summed.items()} == _stored(spent, key)
    ada_core = next(r for r in rows if r["user"] == "ada@example.com" and r["model"] == "core")
    assert (ada_core["images"], ada_core["credits"], ada_core["refunded_credits"]) == ("2", "6", "3")
    only_today = _admin(spent).get(f"/admin/usage.csv?from={TODAY}&to={TODAY}").get_data(as_text=True)
    assert "ultra" in only_today and str(TODAY - timedelta(days=1)) not in only_today


def test_the_month_is_projected_from_what_the_allowances_count(spent):
    with spent.app_context():
        projection = totals.month_projection(TODAY)
        assert projection.used == pytest.approx(spending.used(spending.INSTALL_SCOPE, projection.month))
    assert projection.month_end == pytest.approx(projection.used / TODAY.day * projection.days_in_month)
    page = _admin(spent).get("/admin/usage").get_data(as_text=True)
    assert f'class="usage-projection">{projection.month_end:.1f}<' in page
    assert "1500 credits across every active account" not in page  # the admin has no cap
    assert "No STABILITY_API_KEY is set" in page


def test_my_usage_shows_only_your_own_and_its_csv(spent):
    client = spent.test_client()
    sign_in(client, "bob@example.com")
    page = client.get("/account/usage").get_data(as_text=True)
    assert _table(page, "By model") == {"ultra": (8.0, 16.0), "core": (3.0, 0.0)}
    assert "ada@example.com" not in page
    answer = client.get(f"/account/usage.csv?from={TODAY - timedelta(days=1)}")
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert {r["user"] for r in rows} == {"bob@example.com"}


def test_only_admins_see_the_usage_page_and_bad_dates_are_explained(spent):
    member = spent.test_client()
    sign_in(member, "ada@example.com")
    assert member.get("/admin/usage").status_code == 404 and member.get("/admin/usage.csv").status_code == 404
    admin = _admin(spent)
    answer = admin.get("/admin/usage?from=yesterday&to=2026-01-01")
    assert answer.status_code == 422 and "written YYYY-MM-DD" in answer.get_data(as_text=True)
    assert admin.get("/admin/usage.csv?from=2026-02-01&to=2026-01-01").status_code == 400


def test_the_chart_stacks_each_day_and_keeps_seven_series_and_the_others():
    rows = [totals.UsageRow(TODAY, f"user{n}@example.com", "core", 1, float(n + 1), 0.0, 0) for n in range(9)]
    chart = charts.stacked_by(rows, [TODAY], "user", "by user")
    assert len(chart.legend) == 8 and chart.legend[-1][1] == "others" and chart.legend[-1][2] == 3.0
    assert sum(s.height for s in chart.segments) == pytest.approx((45 / 50) * (chart.height - 12 - 28))
