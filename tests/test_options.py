"""Batch options on the home form: validation, what reaches the API, the cost and the balance."""

import re

import pytest
import sqlalchemy as sa
from conftest import API_KEY as KEY
from conftest import drain
from tests_support import csrf_for

from app.extensions import db
from app.models import Batch, Generation


def submit(client, prompts, **options):
    token = csrf_for(client)
    data = {"csrf_token": token, **{f"prompts-{i}": p for i, p in enumerate(prompts)}, **options}
    return client.post("/", data=data)


def test_the_form_offers_every_documented_value(client):
    html = client.get("/").get_data(as_text=True)
    for model in ("core", "ultra", "sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash"):
        assert f'value="{model}"' in html
    for ratio in ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"):
        assert f'<option value="{ratio}"' in html or f'<option selected value="{ratio}"' in html
    assert html.count('<option', html.index('name="style_preset"'), html.index('name="output_format"')) == 18
    for name in ("model", "aspect_ratio", "style_preset", "negative_prompt", "seed", "output_format", "cfg_scale"):
        assert f'name="{name}"' in html and f'<label for="{name}">' in html


@pytest.mark.parametrize(("field", "value", "message"), [
    ("model", "sd3.5-huge", "Not a valid choice"),
    ("aspect_ratio", "4:3", "Not a valid choice"),
    ("style_preset", "watercolour", "Not a valid choice"),
    ("output_format", "gif", "Not a valid choice"),
    ("seed", "4294967295", "Use a whole number from 0 to 4,294,967,294, or leave it empty."),
    ("seed", "-1", "Use a whole number from 0 to 4,294,967,294"),
    ("seed", "lucky", "Use a whole number from 0 to 4,294,967,294"),
    ("cfg_scale", "11", "Use a number from 1 to 10, or leave it empty."),
    ("cfg_scale", "0.5", "Use a number from 1 to 10"),
    ("cfg_scale", "nan", "Use a number from 1 to 10"),
    ("cfg_scale", "-NaN", "Use a number from 1 to 10"),
    ("negative_prompt", "n" * 10_001, "This is 10001 characters long; the limit is 10000."),
])
def test_an_invalid_option_is_explained_next_to_its_field_and_nothing_is_queued(app, client, field, value, message):
    response = submit(client, ["a cat"], **{field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    assert error and message in error.group(1)
    assert "a cat" in html  # the prompt is kept
    if field in ("seed", "cfg_scale", "negative_prompt"):
        assert value in html  # and so is what was typed in the field
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 0


def test_every_option_is_stored_and_reaches_the_api_as_documented(api_app, fake):
    client = api_app.test_client()
    response = submit(client, ["a castle"], model="sd3.5-large-turbo", aspect_ratio="16:9", style_preset="anime",
                      negative_prompt="  blurry  ", seed="4294967294", seed_locked="y", output_format="webp",
                      cfg_scale="2.5")
    assert response.status_code == 303
    drain(api_app)
    (sent,) = fake.generate_requests
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert sent.form == {"prompt": "a castle", "model": "sd3.5-large-turbo", "aspect_ratio": "16:9",
                         "style_preset": "anime", "negative_prompt": "blurry", "seed": "4294967294",
                         "output_format": "webp", "cfg_scale": "2.5"}
    with api_app.app_context():
        generation = db.session.scalars(sa.select(Generation)).one()
        assert (generation.width, generation.height, generation.mime_type) == (1344, 768, "image/webp")
        assert generation.seed == 4294967294 and generation.cfg_scale == 2.5
        assert generation.style_preset == "anime" and generation.negative_prompt == "blurry"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "SD 3.5 Large Turbo · 16:9 · WEBP · Anime · CFG 2.5 · seed 4294967294" in page  # as the form names it


@pytest.mark.parametrize(("model", "path"), [("core", "core"), ("ultra", "ultra")])
def test_core_and_ultra_use_their_paths_and_never_get_model_or_cfg_scale(api_app, fake, model, path):
    submit(api_app.test_client(), ["a castle"], model=model, cfg_scale="5", seed="0")
    drain(api_app)
    (sent,) = fake.generate_requests
    assert sent.path == f"/v2beta/stable-image/generate/{path}"
    assert "model" not in sent.form and "cfg_scale" not in sent.form and "seed" not in sent.form


@pytest.mark.parametrize("model", ["sd3.5-large", "sd3.5-medium", "sd3.5-flash"])
def test_sd35_models_are_chosen_by_the_model_field_never_the_path(api_app, fake, model):
    submit(api_app.test_client(), ["a castle"], model=model)
    drain(api_app)
    (sent,) = fake.generate_requests
    assert sent.path == "/v2beta/stable-image/generate/sd3" and sent.form["model"] == model
    assert "cfg_scale" not in sent.form  # empty: the model's own default applies


def test_the_cost_follows_the_prompt_count_and_the_model(client):
    token = csrf_for(client)
    html = client.post("/cost", data={"csrf_token": token, "prompts-0": "a", "prompts-1": " ", "prompts-2": "c",
                                      "model": "ultra"}).get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert "2 images × 8 credits (Stable Image Ultra) = 16 credits (about $0.16)" in text


def test_the_home_page_shows_the_cost_before_submitting(client):
    text = " ".join(re.sub(r"<[^>]+>", "", client.get("/").get_data(as_text=True)).split())
    assert "Write a prompt to see what the batch will cost." in text


def test_a_row_edit_refreshes_the_cost_out_of_band(client):
    token = csrf_for(client)
    html = client.post("/", data={"csrf_token": token, "prompts-0": "a", "model": "sd3.5-flash", "add_row": "1"},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="batch-cost"' in html and 'hx-swap-oob="true"' in html and "2.5 credits" in html


def test_the_cost_needs_a_csrf_token(client):
    assert client.post("/cost", data={"prompts-0": "a"}).status_code == 400


def test_the_balance_comes_from_the_api_and_is_cached(api_app, fake):
    client = api_app.test_client()
    assert 'hx-get="/balance"' in client.get("/").get_data(as_text=True)
    first = client.get("/balance").get_data(as_text=True)
    second = client.get("/balance").get_data(as_text=True)
    assert "10000.00 credits" in first and first == second
    assert [r.path for r in fake.requests].count("/v1/user/balance") == 1


def test_the_balance_is_not_offered_in_demo_mode(client):
    assert 'hx-get="/balance"' not in client.get("/").get_data(as_text=True)


def test_an_unreachable_balance_says_so_without_failing_the_page(make_app):
    app = make_app(STABILITY_API_KEY=KEY, STABILITY_API_BASE_URL="http://127.0.0.1:1")
    response = app.test_client().get("/balance")
    assert response.status_code == 200 and "Balance unavailable" in response.get_data(as_text=True)


def test_every_declared_option_has_a_column_a_form_field_api_fields_and_a_flag(app):
    """GenerationOptions is the one declaration: these places follow it, or fail here when a new option needs them."""
    from app.api.cli import generate_command
    from app.api.schemas import BatchRequestSchema, OptionsSchema
    from app.prompts.forms import PromptForm
    from app.providers.options import OPTION_FIELDS, OPTION_NAMES, column_of

    columns = Generation.__table__.columns
    with app.test_request_context():
        form = PromptForm(meta={"csrf": False})
    flags = {param.name for param in generate_command.params}
    for option in OPTION_FIELDS:
        column = columns[column_of(option.name)]
        assert column.nullable == (option.default is None), option.name
        assert option.name in form and option.name in flags, option.name
    assert [field.name for field in form.option_fields() if field.name in OPTION_NAMES] == list(OPTION_NAMES)
    assert list(OptionsSchema().fields) == list(OPTION_NAMES)
    assert set(OPTION_NAMES) <= set(BatchRequestSchema().fields)


def test_a_row_gives_back_the_options_it_was_stored_with():
    from app.providers.options import GenerationOptions

    options = GenerationOptions(model="sd3.5-large", aspect_ratio="16:9", style_preset="anime", output_format="webp",
                                seed=7, cfg_scale=4.5, negative_prompt="fog")
    assert Generation(**Generation.option_columns(options)).options == options
