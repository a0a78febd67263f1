"""The home form opens with the options of the user's last batch (never its prompts), kept per user in the database:
in another browser, not for anyone else, not after a refused batch, and `?reuse=<id>` still wins."""

import re
import threading

import pytest
import sqlalchemy as sa
from factories import make_token, make_user
from tests_support import bearer, csrf_for, sign_in

from app.accounts.users import local_user, require_user
from app.extensions import db
from app.models import LastOptions
from app.prompts import memory

EMAIL = "ida@example.com"
CHOSEN = {"model": "sd3.5-large", "aspect_ratio": "21:9", "style_preset": "neon-punk", "output_format": "jpeg",
          "images_per_prompt": "3", "cfg_scale": "7.5", "negative_prompt": "text, watermarks", "seed": "4040",
          "seed_locked": "y"}
DEFAULTS = {"model": "core", "aspect_ratio": "1:1", "style_preset": "", "output_format": "png",
            "images_per_prompt": "1", "cfg_scale": "", "negative_prompt": ""}


def post(client, prompts, **fields):
    data = {"csrf_token": csrf_for(client), **{f"prompts-{i}": text for i, text in enumerate(prompts)}, **fields}
    return client.post("/", data=data)


def form_values(html: str) -> dict[str, str]:
    """What the form shows in each remembered field (a select's selected option; an input's or textarea's text)."""
    values = {}
    for name in DEFAULTS:
        select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
        if select:
            chosen = re.search(r'<option selected value="([^"]*)"', select.group(1))
            values[name] = chosen.group(1) if chosen else ""
            continue
        area = re.search(rf'<textarea[^>]*name="{name}"[^>]*>\s*(.*?)</textarea>', html, re.S)
        values[name] = area.group(1) if area else re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"',
                                                            html).group(1)
    values["seed"] = re.search(r'<input[^>]*id="seed"[^>]*value="(\d*)"', html).group(1)
    values["seed_locked"] = "y" if re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html) else ""
    return values


def prompts_of(html: str) -> list[str]:
    return [text.strip() for text in re.findall(r'<textarea[^>]*class="prompt-input"[^>]*>(.*?)</textarea>', html,
                                                re.S)]


@pytest.fixture
def accounts(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, EMAIL)
    make_user(app, "other@example.com")
    return app


def browser(app, email=EMAIL):
    """A client of its own (its own cookies, as another browser), signed in."""
    client = app.test_client()
    sign_in(client, email)
    return client


def test_after_a_batch_the_form_opens_with_its_options_but_not_its_prompts(client):
    assert post(client, ["a secret harbour"], **CHOSEN).status_code == 303
    html = client.get("/").get_data(as_text=True)
    assert form_values(html) == CHOSEN
    assert prompts_of(html) == [""]
    assert "3 prompts" not in html and "1 prompt × 3 images = 3 images" not in html  # no prompt: no price yet


def test_the_options_follow_the_user_to_another_browser_and_to_no_one_else(accounts):
    laptop = browser(accounts)
    assert post(laptop, ["a kite"], **CHOSEN).status_code == 303
    assert form_values(browser(accounts).get("/").get_data(as_text=True)) == CHOSEN
    other = form_values(browser(accounts, "other@example.com").get("/").get_data(as_text=True))
    assert {name: other[name] for name in DEFAULTS} == DEFAULTS and other["seed_locked"] == ""


def test_the_newest_batch_wins_and_an_unlocked_seed_stays_unlocked(accounts):
    client = browser(accounts)
    post(client, ["a kite"], **CHOSEN)
    post(client, ["a kite"], model="ultra", images_per_prompt="2", seed="99")
    shown = form_values(client.get("/").get_data(as_text=True))
    assert shown == {**DEFAULTS, "model": "ultra", "images_per_prompt": "2", "seed": "99", "seed_locked": ""}


@pytest.mark.parametrize("refusal", [
    {"prompts-0": "x" * 10_001},  # 422
    {"expected_credits": "1"},  # 409: the price changed
])
def test_a_refused_batch_changes_nothing_the_next_form_opens_with(accounts, refusal):
    client = browser(accounts)
    post(client, ["a kite"], **CHOSEN)
    response = client.post("/", data={"csrf_token": csrf_for(client), "prompts-0": "a kite", **DEFAULTS,
                                      "model": "ultra", **refusal})
    assert response.status_code in (409, 422)
    assert form_values(client.get("/").get_data(as_text=True)) == CHOSEN


def test_a_batch_over_the_allowance_changes_nothing_either(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, EMAIL, monthly_credits=5)
    client = browser(app)
    assert post(client, ["a kite"], model="ultra").status_code == 402
    assert form_values(client.get("/").get_data(as_text=True))["model"] == "core"


def test_a_batch_from_the_api_leaves_the_form_as_the_person_left_it(accounts):
    client = browser(accounts)
    post(client, ["a kite"], **CHOSEN)
    auth = bearer(make_token(accounts, EMAIL))
    assert accounts.test_client().post("/api/batches", json={"prompts": ["a"], "model": "ultra"},
                                       headers=auth).status_code == 201
    assert form_values(client.get("/").get_data(as_text=True)) == CHOSEN


def test_reuse_still_wins_over_the_remembered_options(app, client):
    post(client, ["a first fox"], model="sd3.5-flash", aspect_ratio="9:16")
    with app.app_context():
        first = db.session.execute(sa.text("SELECT min(id) FROM generations")).scalar_one()
    post(client, ["a later owl"], **CHOSEN)
    html = client.get(f"/?reuse={first}").get_data(as_text=True)
    shown = form_values(html)
    assert prompts_of(html) == ["a first fox"]
    assert (shown["model"], shown["aspect_ratio"], shown["images_per_prompt"]) == ("sd3.5-flash", "9:16", "1")


def test_a_kept_value_the_form_no_longer_offers_opens_a_working_form(accounts):
    with accounts.app_context():
        user_id = require_user(EMAIL).id
        db.session.add(LastOptions(user_id=user_id, options={"model": "sdxl-gone", "images_per_prompt": 9,
                                                             "seed": "not a seed", "colour": "red"}))
        db.session.commit()
    client = browser(accounts)
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="seed"' in html and "colour" not in html
    assert post(client, ["a kite"]).status_code == 303


def test_two_batches_at_once_keep_one_row_with_one_of_their_options(accounts):
    """The write is one upsert: the second of two concurrent first batches does not fail on the primary key."""
    clients = [browser(accounts) for _ in range(2)]
    answers = []
    models = ["ultra", "sd3.5-medium"]
    threads = [threading.Thread(target=lambda c=c, m=m: answers.append(post(c, ["a kite"], model=m).status_code))
               for c, m in zip(clients, models, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [303, 303]
    with accounts.app_context():
        (row,) = db.session.scalars(sa.select(LastOptions)).all()
        assert row.options["model"] in models


def test_recall_without_a_kept_row_gives_a_random_unlocked_seed_only(app):
    with app.test_request_context():
        values = memory.recall(local_user())
    assert set(values) == {"seed", "seed_locked"} and values["seed_locked"] is False and values["seed"] >= 1
