"""The price shown is the price charged: a stale expected_credits is refused (form and API) with nothing charged or
queued, and the server's preview equals the reservation for every model and images per prompt."""

import itertools
import re

import pytest
import sqlalchemy as sa
from factories import make_token, make_user
from tests_support import bearer, csrf_for, sign_in

from app.accounts.users import require_user
from app.api.openapi import document
from app.extensions import db
from app.generations import spending
from app.models import Batch, Generation
from app.providers.options import MODELS
from app.services import services

EMAIL = "payer@example.com"


@pytest.fixture
def payer(make_app):
    """An accounts install and a signed-in member with 100 credits a month: (app, client, CSRF token)."""
    app = make_app(AUTH_MODE="accounts")
    make_user(app, EMAIL, monthly_credits=100)
    client = app.test_client()
    sign_in(client, EMAIL)
    return app, client, csrf_for(client)


def post_form(client, token, prompts, **fields):
    data = {"csrf_token": token, **{f"prompts-{i}": text for i, text in enumerate(prompts)}, **fields}
    return client.post("/", data=data)


def nothing_happened(app) -> bool:
    """No batch, no generation, no credit reserved and no job in Redis."""
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) + db.session.scalar(
            sa.select(sa.func.count()).select_from(Generation))
        used = spending.allowance(require_user(EMAIL)).used
        jobs = services(app).require_redis().keys("rq:job:*")
    return rows == 0 and used == 0 and jobs == []


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def shown(html: str) -> float:
    """The price the page shows, as its hidden expected_credits carries it."""
    return float(re.search(r'name="expected_credits" id="expected-credits" value="([^"]*)"', html).group(1))


def reserved(app) -> list[float]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Generation.credits).order_by(Generation.id)))


def test_a_stale_price_from_the_form_is_refused_keeping_everything_and_charging_nothing(payer):
    app, client, token = payer
    typed = {"model": "ultra", "aspect_ratio": "16:9", "style_preset": "anime", "output_format": "webp",
             "images_per_prompt": "4", "negative_prompt": "blurry", "seed": "77", "seed_locked": "y"}
    response = post_form(client, token, ["a red kite", "a blue kite"], expected_credits="24", **typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert nothing_happened(app)
    error = re.search(r'<p class="error" id="spending-error" role="alert">([^<]*)</p>', html).group(1)
    assert error == "The price changed: now 64 credits. Press Generate again to confirm."
    assert 'aria-describedby="spending-error"' in html and "autofocus>Generate" in html
    assert "a red kite" in html and "a blue kite" in html and "blurry</textarea>" in html
    for name, value in typed.items():
        if name in ("negative_prompt", "seed_locked"):
            continue
        assert re.search(rf'<select[^>]*id="{name}"[^>]*>.*?<option selected value="{value}"', html, re.S) or (
            re.search(rf'<input[^>]*id="{name}"[^>]*value="{value}"', html)), name
    assert re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)
    assert "2 prompts × 4 images = 8 images × 8 credits (Stable Image Ultra) = 64 credits" in text_of(html)
    assert shown(html) == 64  # so a second press confirms the new price
    again = post_form(client, token, ["a red kite", "a blue kite"], expected_credits=str(shown(html)), **typed)
    assert again.status_code == 303
    assert reserved(app) == [8] * 8
    with app.app_context():
        assert spending.allowance(require_user(EMAIL)).used == 64


@pytest.mark.parametrize("posted", ["3.001", "2.5", "abc", "nan", "inf", "-3", "1e400"])
def test_anything_but_the_price_itself_is_refused(payer, posted):
    app, client, token = payer
    response = post_form(client, token, ["a fox"], expected_credits=posted)  # 1 × 3 credits
    assert response.status_code == 409 and nothing_happened(app)
    assert "The price changed: now 3 credits." in text_of(response.get_data(as_text=True))


def test_the_price_itself_in_any_spelling_is_accepted_and_none_sent_is_the_current_price(payer):
    app, client, token = payer
    assert post_form(client, token, ["a fox"], expected_credits=" 3.0 ").status_code == 303
    assert post_form(client, token, ["a fox"]).status_code == 303  # a script posting the form without it
    assert reserved(app) == [3, 3]


def test_a_price_refusal_comes_before_the_allowance_and_then_the_allowance_still_holds(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, EMAIL, monthly_credits=20)
    client = app.test_client()
    sign_in(client, EMAIL)
    token = csrf_for(client)
    response = post_form(client, token, ["a fox", "an owl"], model="ultra", images_per_prompt="2",
                         expected_credits="12")
    assert response.status_code == 409 and "now 32 credits" in text_of(response.get_data(as_text=True))
    response = post_form(client, token, ["a fox", "an owl"], model="ultra", images_per_prompt="2",
                         expected_credits="32")
    assert response.status_code == 402
    assert "This batch costs 32 credits; you have 20 left this month." in text_of(response.get_data(as_text=True))
    assert nothing_happened(app)


@pytest.mark.parametrize(("model", "per_prompt"), list(itertools.product(MODELS, range(1, 5))))
def test_the_servers_preview_is_what_the_submission_reserves(payer, model, per_prompt):
    """The price without JavaScript (the browser's own is tests/test_e2e_price.py's)."""
    app, client, token = payer
    prompts = ["a lighthouse", "a harbour", "a bridge"]
    page = post_form(client, token, prompts, model=model, images_per_prompt=str(per_prompt), roll_seed="1")
    preview = shown(page.get_data(as_text=True))
    assert preview == len(prompts) * per_prompt * MODELS[model].credits
    response = post_form(client, token, prompts, model=model, images_per_prompt=str(per_prompt),
                         expected_credits=str(preview))
    assert response.status_code == 303
    assert sum(reserved(app)) == preview and len(reserved(app)) == len(prompts) * per_prompt


@pytest.fixture
def api(payer):
    app, _client, _token = payer
    return app, app.test_client(), bearer(make_token(app, EMAIL))


def test_the_api_refuses_a_stale_expected_credits_with_409_naming_the_price(api):
    app, client, auth = api
    body = {"prompts": ["a fox", "an owl"], "model": "ultra", "images_per_prompt": 4, "expected_credits": 24}
    response = client.post("/api/batches", json=body, headers={**auth, "Idempotency-Key": "k-1"})
    assert response.status_code == 409
    assert response.get_json() == {"error": {
        "code": "price_changed",
        "message": "The price changed: this batch costs 64 credits, not 24; nothing was created or charged. "
                   "Send expected_credits 64 to confirm.",
        "fields": {"expected_credits": "Now 64 credits."}}}
    assert nothing_happened(app)
    # Refused, so the key was not spent: the same key with the price confirmed creates the batch.
    confirmed = client.post("/api/batches", json={**body, "expected_credits": 64},
                            headers={**auth, "Idempotency-Key": "k-1"})
    assert confirmed.status_code == 201 and confirmed.get_json()["cost"]["reserved"] == 64


def test_the_api_takes_no_expected_credits_as_the_current_price_and_checks_its_type(api):
    app, client, auth = api
    def send(expected):
        return client.post("/api/batches", json={"prompts": ["a"], "expected_credits": expected}, headers=auth)

    assert send(None).status_code == 201
    for wrong in ("3", -3, True):
        response = send(wrong)
        assert response.status_code == 422 and "expected_credits" in response.get_json()["error"]["fields"]
    assert send(3.0).status_code == 201
    assert reserved(app) == [3, 3]


def test_the_openapi_document_states_expected_credits_and_the_409(api):
    app, _client, _auth = api
    spec = document(app)
    operation = spec["paths"]["/api/batches"]["post"]
    assert "409" in operation["responses"] and "price_changed" in operation["responses"]["409"]["description"]
    schema = spec["components"]["schemas"]["BatchRequest"]["properties"]["expected_credits"]
    assert schema["minimum"] == 0 and "409" in schema["description"]
    assert "expected_credits" not in spec["components"]["schemas"]["BatchRequest"].get("required", [])
