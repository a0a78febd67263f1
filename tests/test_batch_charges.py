"""The generate page and the API say what a batch reserved of its owner's allowance and what was refunded, and the
page's poll keeps it current."""

import re

import sqlalchemy as sa
from tests_support import csrf_for

from app.extensions import db
from app.generations import lifecycle
from app.models import Generation


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def test_the_batch_page_says_what_was_reserved_and_what_was_refunded_and_its_poll_follows(app, client):
    location = client.post("/", data={"csrf_token": csrf_for(client), "prompts-0": "a fox", "prompts-1": "an owl",
                                      "prompts-2": "a hare", "model": "sd3.5-large"}).headers["Location"]
    batch_id = int(location.rsplit("/", 1)[1])
    with app.app_context():
        first = db.session.scalar(sa.select(sa.func.min(Generation.id)))
    html = client.get(location).get_data(as_text=True)
    assert "Credits: 19.5 reserved." in text_of(html)
    seen = re.search(r"seen=([^\"&]+)", html).group(1)
    with app.test_request_context():
        lifecycle.cancel_generation(first)  # queued: never sent, so refunded
    poll = client.get(f"/generate/{batch_id}/status?seen={seen}").get_data(as_text=True)
    assert "Credits: 19.5 reserved, 6.5 refunded (images the API did not charge) so far." in text_of(poll)
    with app.test_request_context():
        lifecycle.cancel_batch(batch_id)
    page = text_of(client.get(location).get_data(as_text=True))
    assert "Credits: 19.5 reserved, 19.5 refunded (images the API did not charge), 0 spent." in page
    api_cost = client.get(f"/api/batches/{batch_id}").get_json()["cost"]
    assert api_cost == {"credits_per_image": 6.5, "credits": 0, "reserved": 19.5, "refunded": 19.5}
