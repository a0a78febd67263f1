"""Text the database cannot take (NUL, other control characters, lone surrogates) is caught before it gets there."""

import re

import pytest
import sqlalchemy as sa
from factories import advance, make_batch
from tests_support import csrf_for

from app.extensions import db
from app.models import Batch, Status
from app.text.storable import first_unsafe_character, unsafe_character_message, without_unsafe_characters


@pytest.mark.parametrize(("text", "found"), [
    ("a red fox", None),
    ("tabs\tnew lines\nand\r\nreturns are fine", None),
    ("emoji 🦊 and accents é are fine", None),
    ("\x00", (1, "\x00")),
    ("a red f\x00x", (8, "\x00")),
    ("bell\x07", (5, "\x07")),
    ("escape \x1b[31m", (8, "\x1b")),
    ("delete\x7f", (7, "\x7f")),
    ("c1 \x85", (4, "\x85")),
    ("lone \ud800 surrogate", (6, "\ud800")),
])
def test_the_first_unsafe_character_and_its_position_are_found(text, found):
    assert first_unsafe_character(text) == found


def test_the_message_says_which_character_and_where():
    assert unsafe_character_message(12, "\x00") == "Remove the invisible control character U+0000 at position 12."
    assert unsafe_character_message(3, "\udc80") == "Remove the broken character U+DC80 at position 3."


def test_searches_drop_unsafe_characters():
    assert without_unsafe_characters("f\x00o\x1bx\ud800\t") == "fox\t"


def post(client, **fields):
    return client.post("/", data={"csrf_token": csrf_for(client), **fields})


def batches(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Batch.id)))


@pytest.mark.parametrize("field", ["prompts-1", "negative_prompt"])
def test_a_nul_in_a_prompt_field_is_explained_next_to_it_and_the_text_is_kept(app, client, field):
    fields = {"prompts-0": "a cat", "prompts-1": "a dog", field: "a red f\x00x"}
    response = post(client, **fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    assert error and error.group(1) == "Remove the invisible control character U+0000 at position 8."
    assert "a red f" in html and "x</textarea>" in html and "a cat" in html
    assert batches(app) == 0


def test_other_control_characters_in_a_prompt_are_refused_too(app, client):
    response = post(client, **{"prompts-0": "  bell\x07"})
    assert response.status_code == 422
    assert "U+0007 at position 5." in response.get_data(as_text=True)  # counted after trimming, as shown
    assert batches(app) == 0


def test_tabs_and_new_lines_in_a_prompt_are_accepted(app, client):
    assert post(client, **{"prompts-0": "line one\r\n\tline two"}).status_code == 303
    assert batches(app) == 1


@pytest.mark.parametrize("query", ["%00", "fox%00", "%1b%5b31m", "%ed%a0%80", "%ff%fe"])
def test_a_gallery_search_with_unsafe_characters_answers_normally(client, query):
    response = client.get(f"/all/?q={query}")
    assert response.status_code == 200
    assert "\x00" not in response.get_data(as_text=True)


def test_a_gallery_search_ignores_the_unsafe_characters_it_drops(app, client):
    _, (gid,) = make_batch(app, "a red fox", enqueue=False)
    advance(app, gid, Status.SUCCEEDED, file_name="aa/fox.png", mime_type="image/png", width=1, height=1)
    assert "a red fox" in client.get("/all/?q=red%00+fox").get_data(as_text=True)
