"""The prompt form: rows added and removed in place, validation and where it puts the focus, what a submission
creates, and the recent prompts it offers."""

import re

import pytest
import sqlalchemy as sa
from factories import make_user
from tests_support import csrf_for, sign_in

from app.extensions import db
from app.models import Batch, Generation


def prompt_fields(html: str) -> list[tuple[str, str]]:
    """(name, text) of every prompt textarea, in page order."""
    pattern = re.compile(r'<textarea[^>]*name="(prompts-\d+)"[^>]*>\r?\n?(.*?)</textarea>', re.S)
    return [(name, text) for name, text in pattern.findall(html)]


def post(client, csrf_token, prompts, headers=None, **extra):
    """Post the form as a browser would, one field per row."""
    data = {"csrf_token": csrf_token, **{f"prompts-{i}": text for i, text in enumerate(prompts)}, **extra}
    return client.post("/", data=data, headers=headers or {})


def test_home_page_shows_one_labelled_prompt_row(client):
    html = client.get("/").get_data(as_text=True)
    assert prompt_fields(html) == [("prompts-0", "")]
    assert '<label for="prompts-0">Prompt 1</label>' in html


def test_add_row_keeps_typed_text_and_appends_an_empty_row(client, csrf_token):
    response = post(client, csrf_token, ["a red fox", "a blue bird"], add_row="1")
    assert response.status_code == 200
    assert prompt_fields(response.get_data(as_text=True)) == [
        ("prompts-0", "a red fox"), ("prompts-1", "a blue bird"), ("prompts-2", "")]


def test_htmx_add_row_answers_with_the_new_row_only_so_the_others_stay_as_they_are(client, csrf_token):
    response = post(client, csrf_token, ["one"], headers={"HX-Request": "true"}, add_row="1")
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<li class="prompt-row">')
    assert "<html" not in html and 'id="prompt-rows"' not in html
    assert prompt_fields(html) == [("prompts-1", "")]  # row 0 is not sent back, so its height is kept
    # The new row takes the focus, so a keyboard user can type straight away.
    assert re.search(r'<textarea[^>]*autofocus[^>]*name="prompts-1"', html)
    assert re.search(r'<button[^>]*id="add-row"[^>]*hx-swap-oob="true"', html, re.S)


def test_htmx_remove_row_answers_with_nothing_in_its_place_but_the_add_button(client, csrf_token):
    response = post(client, csrf_token, ["one", "two", "three"], headers={"HX-Request": "true"}, remove_row="1")
    html = response.get_data(as_text=True)
    assert prompt_fields(html) == []
    assert 'id="batch-cost"' not in html  # the page prices the rows it has (static/js/cost.js)
    assert re.search(r'<button[^>]*id="add-row"[^>]*hx-swap-oob="true"', html, re.S)


def test_remove_middle_row_renumbers_the_rest_without_losing_any(client, csrf_token):
    response = post(client, csrf_token, ["first", "second", "third"], remove_row="1")
    assert prompt_fields(response.get_data(as_text=True)) == [("prompts-0", "first"), ("prompts-1", "third")]


def test_add_after_remove_never_collides_with_an_existing_name(client, csrf_token):
    html = post(client, csrf_token, ["first", "second", "third"], remove_row="1").get_data(as_text=True)
    rows = [text for _, text in prompt_fields(html)]
    html = post(client, csrf_token, rows, add_row="1").get_data(as_text=True)
    assert prompt_fields(html) == [("prompts-0", "first"), ("prompts-1", "third"), ("prompts-2", "")]


def test_submitting_rows_with_gaps_in_their_numbers_keeps_every_prompt(app, client, csrf_token):
    # A browser with a stale page might send non-contiguous names; none may be dropped.
    data = {"csrf_token": csrf_token, "prompts-0": "zero", "prompts-3": "three", "prompts-7": "seven"}
    assert client.post("/", data=data).status_code == 303
    with app.app_context():
        prompts = db.session.scalars(sa.select(Generation.prompt).order_by(Generation.position)).all()
    assert prompts == ["zero", "three", "seven"]


def test_remove_the_only_row_leaves_one_empty_row(client, csrf_token):
    response = post(client, csrf_token, ["only"], remove_row="0")
    assert prompt_fields(response.get_data(as_text=True)) == [("prompts-0", "")]


def test_add_is_disabled_once_the_batch_cap_is_reached(make_app):
    app = make_app(MAX_PROMPTS_PER_BATCH=2)
    client = app.test_client()
    token = csrf_for(client)
    html = post(client, token, ["a"], add_row="1").get_data(as_text=True)
    assert re.search(r'name="add_row"[^>]*disabled', html, re.S)


def test_submit_creates_a_batch_with_prompts_in_order_and_redirects_with_303(app, client, csrf_token):
    response = post(client, csrf_token, ["  first  ", "", "second"])
    assert response.status_code == 303
    with app.app_context():
        batch = db.session.scalars(sa.select(Batch)).one()
        assert response.headers["Location"] == f"/generate/{batch.id}"
        assert [(g.position, g.prompt, g.status) for g in batch.generations] == [
            (0, "first", "queued"), (1, "second", "queued")]
        assert all(g.job_id for g in batch.generations)


def test_submit_flashes_how_many_images_were_queued(client, csrf_token):
    response = post(client, csrf_token, ["a", "b", "c"])
    assert "3 images queued." in client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("prompts", [[], [""], ["   ", "\n\t"]])
def test_an_empty_form_asks_for_at_least_one_prompt(app, client, csrf_token, prompts):
    response = post(client, csrf_token, prompts)
    assert response.status_code == 422
    assert "Write at least one prompt." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 0


def test_an_overlong_prompt_is_refused_next_to_its_field_and_all_text_is_kept(app, client, csrf_token):
    long_prompt = "x" * 10_001
    response = post(client, csrf_token, ["fine", long_prompt])
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="prompts-1-error">This is 10001 characters long; the limit is 10000.' in html
    assert prompt_fields(html) == [("prompts-0", "fine"), ("prompts-1", long_prompt)]
    assert 'aria-describedby="prompts-1-error"' in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 0


def test_textareas_carry_no_maxlength_that_would_silently_cut_pasted_text(client):
    assert "maxlength" not in client.get("/").get_data(as_text=True)


def test_a_refused_prompt_takes_the_focus_and_points_at_its_message(client, csrf_token):
    html = post(client, csrf_token, ["fine", "x" * 10_001]).get_data(as_text=True)
    assert re.search(r'<textarea[^>]*aria-describedby="prompts-1-error"[^>]*autofocus[^>]*id="prompts-1"', html)
    assert html.count("autofocus") == 1


def test_an_empty_form_focuses_the_first_prompt_described_by_the_message(client, csrf_token):
    html = post(client, csrf_token, [""]).get_data(as_text=True)
    assert re.search(r'<textarea[^>]*aria-describedby="prompts-error"[^>]*autofocus[^>]*id="prompts-0"', html)
    assert '<p class="error" id="prompts-error" role="alert">Write at least one prompt.</p>' in html


def test_a_prompt_of_exactly_the_limit_after_trimming_is_accepted(client, csrf_token):
    assert post(client, csrf_token, ["  " + "y" * 10_000 + "  "]).status_code == 303


def test_more_prompts_than_the_cap_are_refused_and_kept(make_app):
    app = make_app(MAX_PROMPTS_PER_BATCH=2)
    client = app.test_client()
    token = csrf_for(client)
    response = post(client, token, ["a", "b", "", "c"])
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "3 prompts is more than the 2 one batch may hold; remove 1." in html
    assert [text for _, text in prompt_fields(html)] == ["a", "b", "", "c"]


def test_markup_in_a_prompt_is_shown_as_text(client, csrf_token):
    html = post(client, csrf_token, ["<script>alert(1)</script>", "y" * 10_001]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_post_without_csrf_token_is_refused_with_a_readable_page(app, client):
    response = client.post("/", data={"prompts-0": "a cat"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 0


def test_htmx_row_edit_without_csrf_header_or_field_is_refused(client):
    response = client.post("/", data={"prompts-0": "a", "add_row": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 400


def test_htmx_row_edit_with_the_token_in_a_header_is_accepted(client, csrf_token):
    response = client.post("/", data={"prompts-0": "a", "add_row": "1"},
                           headers={"HX-Request": "true", "X-CSRFToken": csrf_token})
    assert response.status_code == 200


def test_queue_outage_fails_the_rows_instead_of_leaving_them_queued(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    client = app.test_client()
    token = csrf_for(client)
    response = post(client, token, ["a cat"])
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "job queue is unavailable" in page
    with app.app_context():
        assert db.session.scalars(sa.select(Generation.status)).all() == ["failed"]


def test_a_row_named_with_a_non_ascii_digit_is_ignored_rather_than_a_server_error(app, client, csrf_token):
    response = client.post("/", data={"csrf_token": csrf_token, "prompts-²": "odd", "prompts-0": "a cat"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Generation.prompt)).all() == ["a cat"]


def test_recent_prompts_are_your_own_last_distinct_ones_newest_first_even_for_an_admin(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "admin@example.com", admin=True)
    make_user(app, "ann@example.com")
    ann, admin = app.test_client(), app.test_client()
    sign_in(ann, "ann@example.com")
    sign_in(admin, "admin@example.com")
    post(ann, csrf_for(ann), ["ann's secret fox"])
    token = csrf_for(admin)
    for index in range(17):
        post(admin, token, [f"admin prompt {index}", "admin repeated"])
    html = admin.get("/").get_data(as_text=True)
    picked = re.findall(r'class="recent-prompt" href="/\?reuse=(\d+)"\s+data-prompt="([^"]*)"', html)
    assert len(picked) == 15
    assert [text for _, text in picked[:3]] == ["admin repeated", "admin prompt 16", "admin prompt 15"]
    assert "ann's secret fox" not in html.replace("&#39;", "'")
    with app.app_context():
        newest = db.session.scalar(sa.select(sa.func.max(Generation.id)).where(Generation.prompt == "admin repeated"))
    assert int(picked[0][0]) == newest  # the link reuses the newest image of that prompt
    make_user(app, "bob@example.com")  # a member with no history yet
    bob = app.test_client()
    sign_in(bob, "bob@example.com")
    assert "Recent prompts" not in bob.get("/").get_data(as_text=True)
