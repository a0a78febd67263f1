"""Batch options on the home form: validation, what reaches the API, images per prompt and the seed lock (and
seeds.nth_seed), the cost and the balance."""

import json
import re
from html import unescape as html_unescape

import pytest
import sqlalchemy as sa
from conftest import API_KEY as KEY
from conftest import drain
from tests_support import csrf_for

from app.extensions import db
from app.generations.seeds import nth_seed, random_seed
from app.models import Batch, Generation
from app.providers.options import MAX_SEED, MODELS


def submit(client, prompts, **options):
    """Post the home form as a browser would, one field per prompt row."""
    token = csrf_for(client)
    data = {"csrf_token": token, **{f"prompts-{i}": p for i, p in enumerate(prompts)}, **options}
    return client.post("/", data=data)


def rows(app):
    """(position, prompt, requested seed, job id) of every generation, in order."""
    with app.app_context():
        return db.session.execute(sa.select(Generation.position, Generation.prompt, Generation.requested_seed,
                                            Generation.job_id).order_by(Generation.position)).all()


def text_of(html: str) -> str:
    """The text a person reads: tags dropped, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


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

# --- images per prompt and the seed lock ------------------------------------------------------

def test_each_image_of_each_prompt_is_its_own_row_with_its_own_job(app, client):
    response = submit(client, ["a fox", "an owl"], images_per_prompt="3")
    assert response.status_code == 303
    made = rows(app)
    assert [(p, text) for p, text, _, _ in made] == [
        (0, "a fox"), (1, "a fox"), (2, "a fox"), (3, "an owl"), (4, "an owl"), (5, "an owl")]
    assert len({job_id for *_, job_id in made}) == 6
    assert "6 images queued." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_every_queued_row_is_run_by_the_worker(api_app, fake):
    client = api_app.test_client()
    assert submit(client, ["a fox"], images_per_prompt="2").status_code == 303
    drain(api_app)
    assert len(fake.generate_requests) == 2
    with api_app.app_context():
        assert db.session.scalars(sa.select(Generation.status)).all() == ["succeeded", "succeeded"]


@pytest.mark.parametrize("value", ["0", "5", "two", ""])
def test_images_per_prompt_outside_one_to_four_is_refused_next_to_its_field(app, client, value):
    response = submit(client, ["a fox"], images_per_prompt=value)
    assert response.status_code == 422
    assert 'id="images_per_prompt-error"' in response.get_data(as_text=True)
    assert rows(app) == []


def test_unlocked_every_image_gets_its_own_random_seed_whatever_the_field_says(app, client):
    assert submit(client, ["a fox"], images_per_prompt="3", seed="1234").status_code == 303
    assert [seed for _, _, seed, _ in rows(app)] == [None, None, None]  # None: the API draws one per image


def test_an_unlocked_batch_really_gets_different_seeds_from_the_api(api_app, fake):
    client = api_app.test_client()
    submit(client, ["a fox"], images_per_prompt="3", seed="77")
    drain(api_app)
    assert all("seed" not in sent.form for sent in fake.generate_requests)
    with api_app.app_context():
        assert len(set(db.session.scalars(sa.select(Generation.seed)))) == 3


def test_locked_the_nth_image_of_each_prompt_uses_seed_plus_n_minus_one(app, client):
    assert submit(client, ["a fox", "an owl"], images_per_prompt="3", seed="500", seed_locked="y").status_code == 303
    assert [seed for _, _, seed, _ in rows(app)] == [500, 501, 502, 500, 501, 502]


def test_a_locked_seed_at_the_top_of_the_range_wraps_to_one(app, client):
    assert submit(client, ["a fox"], images_per_prompt="3", seed=str(MAX_SEED - 1), seed_locked="y").status_code == 303
    assert [seed for _, _, seed, _ in rows(app)] == [MAX_SEED - 1, MAX_SEED, 1]


def test_nth_seed_keeps_random_random_and_never_yields_zero():
    assert nth_seed(None, 2) is None and nth_seed(0, 1) is None
    assert nth_seed(7, 0) == 7 and nth_seed(MAX_SEED, 1) == 1
    assert all(1 <= random_seed() <= MAX_SEED for _ in range(200))


@pytest.mark.parametrize("seed", ["", "0"])
def test_locking_without_a_seed_says_what_to_type_and_keeps_the_text(app, client, seed):
    response = submit(client, ["a fox"], seed=seed, seed_locked="y")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="seed-error">To lock the seed, type a whole number from 1 to 4,294,967,294', html)
    assert "a fox" in html
    assert re.search(r'<input[^>]*aria-describedby="seed-error"[^>]*autofocus[^>]*id="seed"', html)
    assert rows(app) == []


def test_the_seed_and_lock_of_the_last_batch_fill_the_next_form(client):
    submit(client, ["a fox"], seed="4242", seed_locked="y")
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<input[^>]*id="seed"[^>]*value="4242"', html)
    assert re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)


def test_a_fresh_form_offers_a_random_seed_unlocked(client):
    html = client.get("/").get_data(as_text=True)
    seed = int(re.search(r'<input[^>]*id="seed"[^>]*value="(\d+)"', html).group(1))
    assert 1 <= seed <= MAX_SEED
    assert not re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)


def test_random_without_javascript_rolls_a_new_seed_and_keeps_everything_else(client):
    response = submit(client, ["a fox", "an owl"], seed="12", seed_locked="y", images_per_prompt="2", roll_seed="1")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    seed = int(re.search(r'<input[^>]*id="seed"[^>]*value="(\d+)"', html).group(1))
    assert seed != 12 and "a fox" in html and "an owl" in html
    assert re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)
    assert re.search(r'<option selected value="2">', html)


def test_reusing_an_image_locks_its_seed(api_app, fake):
    client = api_app.test_client()
    submit(client, ["a fox"])
    drain(api_app)
    with api_app.app_context():
        generation = db.session.scalars(sa.select(Generation)).one()
        gid, seed = generation.id, generation.seed
    html = client.get(f"/?reuse={gid}").get_data(as_text=True)
    assert re.search(rf'<input[^>]*id="seed"[^>]*value="{seed}"', html)
    assert re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)



# --- the cost and the balance -------------------------------------------------------------------

def cost_text(html: str) -> str:
    """The Generate bar's price sentence as the server wrote it."""
    match = re.search(r'<p id="batch-cost".*?>(.*?)</p>', html, re.S)
    assert match, "the page has no price"
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


def test_the_cost_follows_the_prompt_count_and_the_model(client):
    # "Random" re-renders the whole form without JavaScript: the server's price for the form as posted.
    html = client.post("/", data={"csrf_token": csrf_for(client), "prompts-0": "a", "prompts-1": " ", "prompts-2": "c",
                                  "model": "ultra", "roll_seed": "1"}).get_data(as_text=True)
    assert cost_text(html).startswith("2 images × 8 credits (Stable Image Ultra) = 16 credits (about $0.16); the "
                                      "offline demo")
    assert 'name="expected_credits" id="expected-credits" value="16"' in html


def test_the_cost_line_multiplies_prompts_by_images(client):
    html = client.post("/", data={"csrf_token": csrf_for(client), "prompts-0": "a", "prompts-1": "b",
                                  "prompts-2": "c", "images_per_prompt": "2", "roll_seed": "1"}).get_data(as_text=True)
    assert "3 prompts × 2 images = 6 images × 3 credits (Stable Image Core) = 18 credits (about $0.18)" in text_of(html)


def test_the_home_page_shows_the_cost_before_submitting(client):
    html = client.get("/").get_data(as_text=True)
    assert cost_text(html) == "Write a prompt to see what the batch will cost."
    # The table the page prices the form from, as it changes: every model, at the price that is reserved.
    prices = json.loads(html_unescape(re.search(r"data-prices='([^']+)'", html).group(1)))
    assert prices["models"]["sd3.5-large"] == {"credits": 6.5, "label": "SD 3.5 Large"}
    assert set(prices["models"]) == set(MODELS) and prices["default"] == "core"


def test_a_row_edit_answers_without_the_cost_so_it_cannot_overwrite_a_newer_one(client):
    token = csrf_for(client)
    html = client.post("/", data={"csrf_token": token, "prompts-0": "a", "model": "sd3.5-flash", "add_row": "1"},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="add-row"' in html and 'id="batch-cost"' not in html and "expected_credits" not in html


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


def test_the_balance_fragment_answers_without_redis_instead_of_500(make_app):
    app = make_app(STABILITY_API_KEY="sk-some-key", REDIS_URL=None)
    response = app.test_client().get("/balance")
    assert response.status_code == 200


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
