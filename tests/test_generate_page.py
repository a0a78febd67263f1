"""The generate page (app/batches) and its poll: the cards in order, what a poll swaps, the one-query poll and its
pace, the progress line, Retry all failed, titles, time left (the JSON API: tests/test_api_*.py)."""

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from factories import advance, make_batch, make_images, make_user
from tests_support import PASSWORD, csrf_for, sign_in

from app.accounts.users import require_user, set_password
from app.batches import eta
from app.batches.titles import batch_title
from app.extensions import db
from app.generations.lifecycle import price_of
from app.models import Generation, Status, User, utcnow
from app.providers.options import DEFAULT_OPTIONS


class StatementLog:
    """Every SQL statement this thread sends while open (a SQLAlchemy event listener): counting, not timing."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.thread, self.statements = threading.get_ident(), []

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        if threading.get_ident() == self.thread:
            self.statements.append(statement)


def seen_of(html):
    match = re.search(r'hx-get="[^"]*/status\?seen=([^"&]*)"', html)
    return match.group(1) if match else None


def progress_text(html):
    """The progress line as a person reads it: tags dropped, spaces collapsed."""
    line = re.search(r'<p class="progress-text">(.*?)</p>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


def poll(client, batch_id, seen, **headers):
    return client.get(f"/generate/{batch_id}/status", query_string={"seen": seen},
                      headers={"HX-Request": "true", **headers})


def poll_url(html):
    match = re.search(r'hx-get="([^"]*/status\?seen=[^"]*)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


# --- the page and its cards ---------------------------------------------------------------------

def test_generate_page_shows_one_card_per_prompt_in_order_and_polls(app, client):
    batch_id, ids = make_batch(app, "first prompt", "second prompt")
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert html.index("first prompt") < html.index("second prompt")
    assert html.count('data-status="queued"') == 2
    assert poll_url(html) == f"/generate/{batch_id}/status?seen=q0.q1"  # status and place in the queue
    assert 'hx-trigger="every 2s"' in html  # everything still queued: a slower poll
    assert '<meta http-equiv="refresh"' in html  # inside <noscript>: pages without JS reload themselves


def test_unknown_batch_is_a_404_page_everywhere(client):
    for url in ("/generate/999", "/generate/999/status", "/api/batches/999"):
        response = client.get(url)
        assert response.status_code == 404
        assert "Traceback" not in response.get_data(as_text=True)


def test_a_poll_with_nothing_new_answers_204_without_a_body(app, client):
    batch_id, _ = make_batch(app, "a", "b")
    response = client.get(f"/generate/{batch_id}/status?seen=q0.q1", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.data == b""


def test_a_poll_swaps_only_the_cards_that_changed(app, client):
    batch_id, ids = make_batch(app, "a", "b", "c")
    advance(app, ids[1], Status.RUNNING)
    html = client.get(f"/generate/{batch_id}/status?seen=q0.q1.q2").get_data(as_text=True)
    # The second card started; the third moved up the queue; the first is unchanged.
    assert f'id="generation-{ids[1]}" hx-swap-oob="true"' in html
    assert f'id="generation-{ids[2]}" hx-swap-oob="true"' in html
    assert f'id="generation-{ids[0]}"' not in html
    assert poll_url(html) == f"/generate/{batch_id}/status?seen=q0.r.q1"
    assert "Generating" in html and "1 ahead" in html


def test_polling_stops_once_every_generation_is_final(app, client, run_worker):
    batch_id, ids = make_batch(app, "a", "[anything]")
    run_worker()
    html = client.get(f"/generate/{batch_id}/status?seen=q0.q1").get_data(as_text=True)
    assert poll_url(html) is None and "hx-trigger" not in html
    assert html.count('hx-swap-oob="true"') == 2
    assert re.search(rf'src="/images/{ids[0]}/file\?v=[0-9a-f]{{12}}"', html)
    assert "All done." in html
    page = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert poll_url(page) is None and 'http-equiv="refresh"' not in page


def test_a_failed_card_shows_its_reason_and_support_id(app, client):
    batch_id, ids = make_batch(app, "a")
    advance(app, ids[0], Status.FAILED, error="Blocked by content moderation (not charged)",
            api_error_id="f" * 32)
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Blocked by content moderation (not charged)" in html
    assert "support id " + "f" * 32 in html
    assert progress_text(html) == "1 of 1 finished · 0 made, 1 failed."


def test_a_filtered_card_shows_the_blurred_image_marked_as_such(app, client):
    batch_id, _ = make_images(app, "a", filtered=True)
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Blurred by content filter" in html and "Filtered" in html


def test_demo_images_are_labelled_on_their_cards(app, client, run_worker):
    batch_id, _ = make_batch(app, "a")
    run_worker()
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Offline demo" in html


def test_reloading_the_page_shows_the_same_truth_as_the_api(app, client):
    batch_id, ids = make_batch(app, "a", "b")
    advance(app, ids[0], Status.FAILED, error="Could not reach the Stability API")
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    api = client.get(f"/api/batches/{batch_id}").get_json()
    assert [g["status"] for g in api["generations"]] == ["failed", "queued"]
    assert 'data-status="failed"' in html and 'data-status="queued"' in html


# --- the poll: one query --------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["owner", "admin"])
def test_an_unchanged_poll_is_one_sql_statement_with_the_session_checked_in_it(accounts_app, who):
    app = accounts_app
    make_user(app, "owner@example.com")
    make_user(app, "admin@example.com", admin=True)
    batch_id, ids = make_batch(app, *[f"prompt {i}" for i in range(30)], owner_email="owner@example.com")
    advance(app, ids[0], Status.RUNNING)
    client = app.test_client()
    sign_in(client, f"{who}@example.com")
    seen = seen_of(client.get(f"/generate/{batch_id}").get_data(as_text=True))
    poll(client, batch_id, seen)  # warm: compiled statements, the pool
    with StatementLog(app) as log:
        response = poll(client, batch_id, seen)
    assert response.status_code == 204
    assert len(log.statements) == 1, log.statements
    assert "FROM generations" in log.statements[0] and "users" in log.statements[0]


def test_an_unchanged_poll_without_accounts_is_one_sql_statement(app, client):
    batch_id, _ = make_batch(app, "a", "b", "c")
    seen = seen_of(client.get(f"/generate/{batch_id}").get_data(as_text=True))
    poll(client, batch_id, seen)
    with StatementLog(app) as log:
        assert poll(client, batch_id, seen).status_code == 204
    assert len(log.statements) == 1, log.statements


def test_a_changed_poll_reads_only_the_changed_rows_whole(app, client):
    batch_id, ids = make_batch(app, *[f"prompt {i}" for i in range(20)])
    seen = seen_of(client.get(f"/generate/{batch_id}").get_data(as_text=True))
    advance(app, ids[19], Status.CANCELED)
    with StatementLog(app) as log:
        html = poll(client, batch_id, seen).get_data(as_text=True)
    assert html.count('hx-swap-oob="true"') == 1 and f'id="generation-{ids[19]}"' in html
    # The card states, the one changed row (a canceled card needs no time-left estimate), and the user that
    # Flask-Login's context processor loads for any template.
    assert len(log.statements) == 3, log.statements
    assert "WHERE generations.id IN" in log.statements[1]


def test_the_fast_poll_still_refuses_whoever_the_ordinary_checks_refuse(accounts_app):
    app = accounts_app
    make_user(app, "owner@example.com")
    make_user(app, "other@example.com")
    batch_id, _ = make_batch(app, "the owner's lighthouse", owner_email="owner@example.com")
    url = f"/generate/{batch_id}/status?seen=x"
    other = app.test_client()
    sign_in(other, "other@example.com")
    assert other.get(url).status_code == 404
    assert app.test_client().get(url).status_code == 302  # signed out: to the sign-in page
    anonymous = app.test_client().get(url, headers={"HX-Request": "true"})
    assert anonymous.status_code == 401 and anonymous.headers["HX-Redirect"].startswith("/login")
    owner = app.test_client()
    sign_in(owner, "owner@example.com")
    assert owner.get(url).status_code == 200
    with app.app_context():
        set_password(require_user("owner@example.com"), PASSWORD)  # set again elsewhere: every session ends
    assert owner.get(url).status_code == 302
    owner = app.test_client()
    sign_in(owner, "owner@example.com")
    with app.app_context():
        db.session.execute(sa.update(User).where(User.email == "owner@example.com").values(disabled=True))
        db.session.commit()
    assert owner.get(url).status_code == 302


# --- the poll's pace --------------------------------------------------------------------------------

def test_the_page_polls_slowly_while_all_wait_every_second_while_one_runs_and_stops_when_final(app, client):
    batch_id, (first, second) = make_batch(app, "a", "b")
    page = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page
    advance(app, first, Status.RUNNING)
    html = poll(client, batch_id, seen_of(page)).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in html
    advance(app, first, Status.CANCELED)
    advance(app, second, Status.CANCELED)
    html = poll(client, batch_id, seen_of(html)).get_data(as_text=True)
    assert "hx-trigger" not in html and seen_of(html) is None


# --- the progress line ------------------------------------------------------------------------------

def test_a_batch_canceled_whole_says_so_and_never_all_done(app, client):
    batch_id, ids = make_batch(app, *[f"prompt {i}" for i in range(10)])
    client.post(f"/generate/{batch_id}/cancel", data={"csrf_token": csrf_for(client)})
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert progress_text(html).startswith("10 of 10 finished · 0 made, 10 canceled.")
    assert "All done" not in html
    assert html.count('class="segment segment-canceled"') == 1 and "segment-succeeded" not in html
    assert re.search(r'class="segment segment-canceled">(<span></span>){10}</span>', html)


def test_a_mixed_batch_names_each_outcome_and_what_is_left(app, client):
    batch_id, ids = make_batch(app, "a", "b", "c", "d", "e", "f")
    advance(app, ids[0], Status.SUCCEEDED)
    advance(app, ids[1], Status.FAILED, error="server error")
    advance(app, ids[2], Status.FILTERED)
    advance(app, ids[3], Status.CANCELED)
    advance(app, ids[4], Status.RUNNING)
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert progress_text(html).startswith(
        "4 of 6 finished · 1 made, 1 filtered, 1 failed, 1 canceled · 1 generating, 1 queued…")
    kinds = re.findall(r'class="segment segment-(\w+)"', html)
    assert kinds == ["succeeded", "filtered", "failed", "canceled", "running", "queued"]


def test_all_done_only_once_something_was_made(app, client):
    batch_id, ids = make_batch(app, "a", "b")
    advance(app, ids[0], Status.SUCCEEDED)
    advance(app, ids[1], Status.FAILED, error="x")
    assert progress_text(client.get(f"/generate/{batch_id}").get_data(as_text=True)) == (
        "2 of 2 finished · 1 made, 1 failed. All done.")


def test_the_queued_message_lives_in_the_progress_line_not_in_a_sticky_flash(app, client):
    token = csrf_for(client)
    response = client.post("/", data={"csrf_token": token, "prompts-0": "a", "prompts-1": "b", "model": "core",
                                      "aspect_ratio": "1:1", "output_format": "png", "generate": "1"})
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 images queued." in progress_text(html)
    assert 'class="flashes"' not in html
    # The next change replaces the progress line, and the message goes with it.
    batch_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        ids = list(db.session.scalars(sa.select(Generation.id).where(Generation.batch_id == batch_id)))
    advance(app, ids[0], Status.CANCELED)
    assert "queued." not in progress_text(poll(client, batch_id, seen_of(html)).get_data(as_text=True))


def test_the_queued_message_is_left_out_once_an_image_has_started(app, client):
    token = csrf_for(client)
    response = client.post("/", data={"csrf_token": token, "prompts-0": "a", "prompts-1": "b", "model": "core",
                                      "aspect_ratio": "1:1", "output_format": "png", "generate": "1"})
    batch_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        first = db.session.scalar(sa.select(Generation.id).where(Generation.batch_id == batch_id))
    advance(app, first, Status.RUNNING)  # a worker quicker than the redirect
    text = progress_text(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "1 generating, 1 queued…" in text and "2 images queued." not in text


def test_card_buttons_name_the_prompt_and_the_image_within_it(app, client):
    token = csrf_for(client)
    response = client.post("/", data={"csrf_token": token, "prompts-0": "a", "prompts-1": "b", "prompts-2": "c",
                                      "images_per_prompt": "2", "model": "core", "aspect_ratio": "1:1",
                                      "output_format": "png", "generate": "1"})
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    names = re.findall(r'Cancel<span class="visually-hidden"> ([^<]*)</span>', html)
    assert names == [f"prompt {p}, image {i}" for p in (1, 2, 3) for i in (1, 2)]  # six cards, not "prompt 6"
    single = client.post("/", data={"csrf_token": token, "prompts-0": "a", "prompts-1": "b", "model": "core",
                                    "aspect_ratio": "1:1", "output_format": "png", "generate": "1"})
    html = client.get(single.headers["Location"]).get_data(as_text=True)
    assert re.findall(r'Cancel<span class="visually-hidden"> ([^<]*)</span>', html) == ["prompt 1", "prompt 2"]


# --- Retry all failed ----------------------------------------------------------------------------

def test_retry_all_failed_queues_each_failed_card_again_and_reserves_its_cost(accounts_app):
    app = accounts_app
    make_user(app, "owner@example.com", monthly_credits=100)
    batch_id, ids = make_batch(app, "a", "b", "c", owner_email="owner@example.com")
    client = app.test_client()
    sign_in(client, "owner@example.com")
    for generation_id in ids[:2]:
        advance(app, generation_id, Status.FAILED, error="server error")
    page = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Retry all failed (2)" in page
    with app.app_context():
        before = _used(app, "owner@example.com")
    response = client.post(f"/generate/{batch_id}/retry-failed", data={"csrf_token": csrf_for(client)})
    assert response.status_code == 303 and response.headers["Location"] == f"/generate/{batch_id}"
    with app.app_context():
        rows = db.session.execute(sa.select(Generation.status, Generation.history).where(Generation.id.in_(ids))
                                  .order_by(Generation.position)).all()
        assert [status for status, _ in rows] == ["queued", "queued", "queued"]
        assert [len(history) for _, history in rows] == [1, 1, 0]  # the failures are kept as history
        assert _used(app, "owner@example.com") == before + 2 * price_of(DEFAULT_OPTIONS)
    page = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Queued 2 failed images again." in page and "Retry all failed" not in page


def test_retry_all_failed_is_refused_whole_when_the_allowance_is_short(accounts_app):
    app = accounts_app
    price = price_of(DEFAULT_OPTIONS)
    make_user(app, "owner@example.com", monthly_credits=3 * price)
    batch_id, ids = make_batch(app, "a", "b", "c", owner_email="owner@example.com")
    client = app.test_client()
    sign_in(client, "owner@example.com")
    for generation_id in ids:  # each failure gives its reservation back
        advance(app, generation_id, Status.FAILED, error="server error")
    with app.app_context():
        user = require_user("owner@example.com")
        user.monthly_credits = price  # room for one retry, not three
        db.session.commit()
    html = client.post(f"/generate/{batch_id}/retry-failed", headers={"HX-Request": "true",
                       "X-CSRFToken": csrf_for(client)}).get_data(as_text=True)
    assert f"Retrying 3 failed images costs {3 * price:g} credits; you have {price:g} left this month. " \
           "Nothing was retried." in html
    with app.app_context():
        assert set(db.session.scalars(sa.select(Generation.status).where(Generation.id.in_(ids)))) == {"failed"}
        assert _used(app, "owner@example.com") == 0


def test_retry_all_failed_needs_a_csrf_token_and_is_a_404_for_someone_else(accounts_app):
    app = accounts_app
    make_user(app, "owner@example.com")
    make_user(app, "other@example.com")
    batch_id, ids = make_batch(app, "a", owner_email="owner@example.com")
    advance(app, ids[0], Status.FAILED, error="x")
    other = app.test_client()
    sign_in(other, "other@example.com")
    assert other.post(f"/generate/{batch_id}/retry-failed", data={"csrf_token": csrf_for(other)}).status_code == 404
    owner = app.test_client()
    sign_in(owner, "owner@example.com")
    assert owner.post(f"/generate/{batch_id}/retry-failed").status_code == 400
    with app.app_context():
        assert db.session.get(Generation, ids[0]).status == "failed"


def _used(app, email):
    from app.generations.spending import allowance

    return allowance(require_user(email)).used


# --- the title ------------------------------------------------------------------------------------

def test_the_batch_is_titled_by_its_first_prompt_with_how_many_more(app, client):
    first = "A lighthouse on a cliff at dawn, waves breaking below, gulls in the spray, oil painting"
    batch_id, _ = make_batch(app, first, "a forest", "a desert")
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "<h1 class=\"batch-title\">A lighthouse on a cliff at dawn, waves breaking below… + 2 more</h1>" in html
    assert "<title>A lighthouse on a cliff at dawn, waves breaking below… + 2 more · Image Generator</title>" \
        in html


def test_a_title_escapes_the_prompt_and_counts_repeated_prompts_once():
    assert batch_title(["a fox", "a fox", "a fox"]) == "a fox"
    assert batch_title(["a fox", "a fox", "an owl"]) == "a fox + 1 more"
    assert batch_title(["  many\n  spaces  "]) == "many spaces"
    assert batch_title(["x" * 200]) == "x" * 59 + "…"


def test_a_prompt_with_markup_is_escaped_in_the_title(app, client):
    batch_id, _ = make_batch(app, "<script>alert(1)</script>")
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- time left --------------------------------------------------------------------------------------

def test_a_running_card_says_how_long_is_left_from_the_models_recent_running_times(app, client):
    batch_id, ids = make_batch(app, *[f"p{i}" for i in range(5)])
    now = utcnow()
    for generation_id, seconds in zip(ids[:3], (4, 10, 30), strict=True):  # median: 10 s
        advance(app, generation_id, Status.SUCCEEDED, started_at=now - timedelta(seconds=seconds + 60),
                finished_at=now - timedelta(seconds=60))
    advance(app, ids[3], Status.RUNNING, started_at=now - timedelta(seconds=3))
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    # 10 s typical, 3 s gone: 7 s left, or 6 once the page took a second to come (a busy machine).
    assert re.search(rf'id="generation-{ids[3]}".*?<span class="eta" data-eta="([67])">~\1 s left</span>', html, re.S)
    assert html.count('class="eta"') == 1  # queued and finished cards have none
    with StatementLog(app) as log:  # cached for the process: the next render asks the database nothing more
        client.get(f"/generate/{batch_id}")
    assert not any("ORDER BY generations.finished_at DESC" in s for s in log.statements)


def test_no_time_left_is_guessed_without_a_finished_image_of_that_model(app, client):
    batch_id, ids = make_batch(app, "a")
    advance(app, ids[0], Status.RUNNING)
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert 'class="eta"' not in html and "Generating" in html


def test_without_a_finished_image_a_page_of_running_cards_asks_once_not_once_per_card(app, client):
    batch_id, ids = make_batch(app, *[f"p{i}" for i in range(8)])
    for generation_id in ids:
        advance(app, generation_id, Status.RUNNING)
    with StatementLog(app) as log:
        client.get(f"/generate/{batch_id}")
    assert sum("ORDER BY generations.finished_at DESC" in s for s in log.statements) == 1


def test_an_overdue_image_is_almost_done_not_negative(app):
    batch_id, ids = make_batch(app, "a", "b")
    now = utcnow()
    advance(app, ids[0], Status.SUCCEEDED, started_at=now - timedelta(seconds=5), finished_at=now)
    advance(app, ids[1], Status.RUNNING, started_at=now - timedelta(seconds=50))
    with app.app_context():
        assert eta.seconds_left(db.session.get(Generation, ids[1])) == 0


# --- relative times -------------------------------------------------------------------------------

def test_every_time_shown_is_a_time_element_with_its_utc_instant(app, client, run_worker):
    batch_id, ids = make_batch(app, "a")
    run_worker()
    for url in (f"/generate/{batch_id}", f"/images/{ids[0]}", "/all/"):
        html = client.get(url).get_data(as_text=True)
        assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^"]*\+00:00">[^<]+ UTC</time>', html), url
        assert "/static/js/relative-time.js" in html
