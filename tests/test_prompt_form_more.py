"""The home form's "more per prompt": images per prompt, the seed lock, recent prompts, focus on a refused field."""

import re

import pytest
import sqlalchemy as sa
from conftest import drain
from tests_support import csrf_for, make_user, signed_in

from app.accounts.users import find_user
from app.extensions import db
from app.generations import spending
from app.generations.seeds import nth_seed, random_seed
from app.models import Batch, Generation
from app.providers.options import MAX_SEED


def post(client, prompts, **extra):
    """Post the home form as a browser would."""
    data = {"csrf_token": csrf_for(client), **{f"prompts-{i}": text for i, text in enumerate(prompts)}, **extra}
    return client.post("/", data=data)


def rows(app):
    """(position, prompt, requested seed, job id) of every generation, in order."""
    with app.app_context():
        return db.session.execute(sa.select(Generation.position, Generation.prompt, Generation.requested_seed,
                                            Generation.job_id).order_by(Generation.position)).all()


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def test_each_image_of_each_prompt_is_its_own_row_with_its_own_job(app, client):
    response = post(client, ["a fox", "an owl"], images_per_prompt="3")
    assert response.status_code == 303
    made = rows(app)
    assert [(p, text) for p, text, _, _ in made] == [
        (0, "a fox"), (1, "a fox"), (2, "a fox"), (3, "an owl"), (4, "an owl"), (5, "an owl")]
    assert len({job_id for *_, job_id in made}) == 6
    assert "6 images queued." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_every_queued_row_is_run_by_the_worker(api_app, fake):
    client = api_app.test_client()
    assert post(client, ["a fox"], images_per_prompt="2").status_code == 303
    drain(api_app)
    assert len(fake.generate_requests) == 2
    with api_app.app_context():
        assert db.session.scalars(sa.select(Generation.status)).all() == ["succeeded", "succeeded"]


def test_unlocked_every_image_gets_its_own_random_seed_whatever_the_field_says(app, client):
    assert post(client, ["a fox"], images_per_prompt="3", seed="1234").status_code == 303
    assert [seed for _, _, seed, _ in rows(app)] == [None, None, None]  # None: the API draws one per image


def test_an_unlocked_batch_really_gets_different_seeds_from_the_api(api_app, fake):
    client = api_app.test_client()
    post(client, ["a fox"], images_per_prompt="3", seed="77")
    drain(api_app)
    assert all("seed" not in sent.form for sent in fake.generate_requests)
    with api_app.app_context():
        assert len(set(db.session.scalars(sa.select(Generation.seed)))) == 3


def test_locked_the_nth_image_of_each_prompt_uses_seed_plus_n_minus_one(app, client):
    assert post(client, ["a fox", "an owl"], images_per_prompt="3", seed="500", seed_locked="y").status_code == 303
    assert [seed for _, _, seed, _ in rows(app)] == [500, 501, 502, 500, 501, 502]


def test_a_locked_seed_at_the_top_of_the_range_wraps_to_one(app, client):
    assert post(client, ["a fox"], images_per_prompt="3", seed=str(MAX_SEED - 1), seed_locked="y").status_code == 303
    assert [seed for _, _, seed, _ in rows(app)] == [MAX_SEED - 1, MAX_SEED, 1]


def test_nth_seed_keeps_random_random_and_never_yields_zero():
    assert nth_seed(None, 2) is None and nth_seed(0, 1) is None
    assert nth_seed(7, 0) == 7 and nth_seed(MAX_SEED, 1) == 1
    assert all(1 <= random_seed() <= MAX_SEED for _ in range(200))


@pytest.mark.parametrize("seed", ["", "0"])
def test_locking_without_a_seed_says_what_to_type_and_keeps_the_text(app, client, seed):
    response = post(client, ["a fox"], seed=seed, seed_locked="y")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="seed-error">To lock the seed, type a whole number from 1 to 4,294,967,294', html)
    assert "a fox" in html
    assert re.search(r'<input[^>]*aria-describedby="seed-error"[^>]*autofocus[^>]*id="seed"', html)
    assert rows(app) == []


@pytest.mark.parametrize("value", ["0", "5", "two", ""])
def test_images_per_prompt_outside_one_to_four_is_refused_next_to_its_field(app, client, value):
    response = post(client, ["a fox"], images_per_prompt=value)
    assert response.status_code == 422
    assert 'id="images_per_prompt-error"' in response.get_data(as_text=True)
    assert rows(app) == []


def test_the_cost_line_multiplies_prompts_by_images(client):
    html = client.post("/", data={"csrf_token": csrf_for(client), "prompts-0": "a", "prompts-1": "b",
                                  "prompts-2": "c", "images_per_prompt": "2", "roll_seed": "1"}).get_data(as_text=True)
    assert "3 prompts × 2 images = 6 images × 3 credits (Stable Image Core) = 18 credits (about $0.18)" in text_of(html)


def test_the_allowance_covers_every_image_and_refuses_the_batch_when_short(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "ann@example.com", monthly_credits=20)
    client = app.test_client()
    signed_in(client, "ann@example.com")
    response = post(client, ["a fox", "an owl"], images_per_prompt="4")  # 8 × 3 = 24 > 20
    assert response.status_code == 402
    assert "This batch costs 24 credits; you have 20 left this month." in text_of(response.get_data(as_text=True))
    assert rows(app) == []
    assert post(client, ["a fox", "an owl"], images_per_prompt="3").status_code == 303  # 6 × 3 = 18
    with app.app_context():
        assert spending.allowance(find_user("ann@example.com")).used == 18
        assert db.session.scalar(sa.select(sa.func.count(Generation.id))) == 6


def test_the_seed_and_lock_of_the_last_batch_fill_the_next_form(client):
    post(client, ["a fox"], seed="4242", seed_locked="y")
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<input[^>]*id="seed"[^>]*value="4242"', html)
    assert re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)


def test_a_fresh_form_offers_a_random_seed_unlocked(client):
    html = client.get("/").get_data(as_text=True)
    seed = int(re.search(r'<input[^>]*id="seed"[^>]*value="(\d+)"', html).group(1))
    assert 1 <= seed <= MAX_SEED
    assert not re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)


def test_random_without_javascript_rolls_a_new_seed_and_keeps_everything_else(client):
    response = post(client, ["a fox", "an owl"], seed="12", seed_locked="y", images_per_prompt="2", roll_seed="1")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    seed = int(re.search(r'<input[^>]*id="seed"[^>]*value="(\d+)"', html).group(1))
    assert seed != 12 and "a fox" in html and "an owl" in html
    assert re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)
    assert re.search(r'<option selected value="2">', html)


def test_reusing_an_image_locks_its_seed(api_app, fake):
    client = api_app.test_client()
    post(client, ["a fox"])
    drain(api_app)
    with api_app.app_context():
        generation = db.session.scalars(sa.select(Generation)).one()
        gid, seed = generation.id, generation.seed
    html = client.get(f"/?reuse={gid}").get_data(as_text=True)
    assert re.search(rf'<input[^>]*id="seed"[^>]*value="{seed}"', html)
    assert re.search(r'<input[^>]*checked[^>]*id="seed_locked"', html)


def test_recent_prompts_are_your_own_last_distinct_ones_newest_first_even_for_an_admin(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "admin@example.com", admin=True)
    make_user(app, "ann@example.com")
    ann, admin = app.test_client(), app.test_client()
    signed_in(ann, "ann@example.com")
    signed_in(admin, "admin@example.com")
    post(ann, ["ann's secret fox"])
    for index in range(17):
        post(admin, [f"admin prompt {index}", "admin repeated"])
    html = admin.get("/").get_data(as_text=True)
    picked = re.findall(r'class="recent-prompt" href="/\?reuse=(\d+)"\s+data-prompt="([^"]*)"', html)
    assert len(picked) == 15
    assert [text for _, text in picked[:3]] == ["admin repeated", "admin prompt 16", "admin prompt 15"]
    assert "ann's secret fox" not in html.replace("&#39;", "'")
    with app.app_context():
        newest = db.session.scalar(sa.select(sa.func.max(Generation.id)).where(Generation.prompt == "admin repeated"))
    assert int(picked[0][0]) == newest  # the link reuses the newest image of that prompt
    assert "Recent prompts" not in signed_in_page(app, "bob@example.com")


def signed_in_page(app, email):
    """The home page of a member with no history yet."""
    make_user(app, email)
    client = app.test_client()
    signed_in(client, email)
    return client.get("/").get_data(as_text=True)


def test_a_refused_prompt_takes_the_focus_and_points_at_its_message(client):
    html = post(client, ["fine", "x" * 10_001]).get_data(as_text=True)
    assert re.search(r'<textarea[^>]*aria-describedby="prompts-1-error"[^>]*autofocus[^>]*id="prompts-1"', html)
    assert html.count("autofocus") == 1


def test_an_empty_form_focuses_the_first_prompt_described_by_the_message(client):
    html = post(client, [""]).get_data(as_text=True)
    assert re.search(r'<textarea[^>]*aria-describedby="prompts-error"[^>]*autofocus[^>]*id="prompts-0"', html)
    assert '<p class="error" id="prompts-error" role="alert">Write at least one prompt.</p>' in html


def test_the_api_takes_images_per_prompt_and_counts_a_given_seed_up(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "ann@example.com")
    client = app.test_client()
    signed_in(client, "ann@example.com")
    token = csrf_for(client)
    response = client.post("/api/batches", json={"prompts": ["a fox"], "images_per_prompt": 2, "seed": 9},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 201, response.get_json()
    assert len(response.get_json()["generations"]) == 2
    assert [seed for _, _, seed, _ in rows(app)] == [9, 10]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 1
