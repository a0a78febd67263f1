"""The generate page and its poll endpoint (the JSON API: tests/test_api_*.py)."""

import re

from factories import advance, make_batch, make_images

from app.models import Status


def progress_text(html):
    """The progress line as a person reads it: tags dropped, spaces collapsed."""
    line = re.search(r'<p class="progress-text">(.*?)</p>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


def poll_url(html):
    match = re.search(r'hx-get="([^"]*/status\?seen=[^"]*)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


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
    advance(app, ids[1], Status.RUNNING.value)
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
    advance(app, ids[0], Status.FAILED.value, error="Blocked by content moderation (not charged)",
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
    advance(app, ids[0], Status.FAILED.value, error="Could not reach the Stability API")
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    api = client.get(f"/api/batches/{batch_id}").get_json()
    assert [g["status"] for g in api["generations"]] == ["failed", "queued"]
    assert 'data-status="failed"' in html and 'data-status="queued"' in html
