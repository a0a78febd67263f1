"""Prompt templates, wildcard lists and grids planned into a batch: the prompts they make, and the price the
preview shows equal to what create_batch reserves, over a table of cases."""

import io
import re

import pytest
import sqlalchemy as sa
from factories import make_user
from tests_support import csrf_for

from app.accounts.users import require_user
from app.extensions import db
from app.models import Batch, Generation, WildcardList
from app.providers.options import GenerationOptions
from app.variations import wildcards
from app.variations.grids import GridError, grid_from, joined_values, split_values
from app.variations.plan import PlanRefused, plan_batch
from app.variations.templates import TemplateError, expand


def test_every_combination_of_two_choices_is_exactly_four_prompts():
    assert expand("a {red|blue} {fox|owl}", "combinatorial", {}) == [
        "a red fox", "a red owl", "a blue fox", "a blue owl"]


def test_numbered_choices_ranges_and_weights_are_dynamicprompts_syntax():
    assert expand("{2$$a|b|c}", "combinatorial", {}) == ["a,b", "a,c", "b,a", "b,c", "c,a", "c,b"]
    assert len(expand("{1-2$$x|y}", "combinatorial", {})) == 4
    assert expand("{0.5::cat|2::dog}", "combinatorial", {}) == ["cat", "dog"]


def test_random_picks_with_the_same_seed_are_the_same_picks():
    lists = {"colors": ["red", "green", "blue", "amber", "teal"]}
    template = "a __colors__ {fox|owl|cat|heron} at {dawn|dusk|noon}"
    first = expand(template, "random", lists, samples=6, seed=1234)
    assert first == expand(template, "random", lists, samples=6, seed=1234) and len(first) == 6
    assert first != expand(template, "random", lists, samples=6, seed=99)


def test_a_missing_wildcard_or_unreadable_template_is_refused():
    with pytest.raises(TemplateError, match="__colours__"):
        expand("a __colours__ fox", "combinatorial", {"colors": ["red"]})
    with pytest.raises(TemplateError, match="__deep__"):  # a list naming a list nobody has
        expand("a __colors__ fox", "combinatorial", {"colors": ["__deep__"]})
    with pytest.raises(TemplateError, match="cannot be read near character 3"):
        expand("a {red|blue fox", "combinatorial", {})


def test_as_typed_leaves_braces_alone():
    assert expand("a {red|blue} fox", "none", {}) == ["a {red|blue} fox"]


def test_axis_values_split_on_commas_and_keep_quoted_ones():
    assert split_values('core, sd3.5-flash') == ["core", "sd3.5-flash"]
    values = ["blurry, dark", "text", ""]
    assert split_values(joined_values(values)) == values


def test_a_grid_makes_one_image_per_cell_each_with_its_options():
    grid = grid_from({"x": ("model", ["core", "sd3.5-flash"]), "y": ("style_preset", ["anime", "photographic"])})
    plan = plan_batch(["a fox"], GenerationOptions(), grid=grid)
    cells = [(image.cell, image.options.model, image.options.style_preset) for image in plan.images]
    assert cells == [({"y": 0, "x": 0}, "core", "anime"), ({"y": 0, "x": 1}, "sd3.5-flash", "anime"),
                     ({"y": 1, "x": 0}, "core", "photographic"), ({"y": 1, "x": 1}, "sd3.5-flash", "photographic")]
    assert len({image.options.seed for image in plan.images}) == 1  # one shared seed: cells differ by their axes
    assert plan.credits == 3 + 2.5 + 3 + 2.5


def test_prompt_search_replace_swaps_the_first_value_for_each():
    grid = grid_from({"x": ("prompt_sr", ["fox", "owl", "heron"])})
    plan = plan_batch(["a fox at dawn, fox tracks"], GenerationOptions(), grid=grid)
    assert [image.prompt for image in plan.images] == [
        "a fox at dawn, fox tracks", "a owl at dawn, owl tracks", "a heron at dawn, heron tracks"]
    with pytest.raises(PlanRefused, match="not in the prompt"):
        plan_batch(["a cat"], GenerationOptions(), grid=grid)


@pytest.mark.parametrize(("axes", "message"), [
    ({"x": ("model", ["core", "sdxl"])}, "'sdxl' is not a model"),
    ({"x": ("seed", ["12", "lucky"])}, "'lucky' is not a seed"),
    ({"x": ("cfg_scale", ["4", "11"])}, "'11' is not a CFG scale"),
    ({"y": ("model", ["core"])}, "Start with the X axis"),
    ({"x": ("model", ["core"]), "y": ("model", ["ultra"])}, "a different option"),
    ({"x": ("model", [])}, "at least one value"),
])
def test_a_wrong_axis_is_refused_with_what_to_type(axes, message):
    with pytest.raises(GridError, match=message):
        grid_from(axes)


def test_cfg_scale_axis_needs_sd35_models():
    grid = grid_from({"x": ("cfg_scale", ["2", "6"])})
    with pytest.raises(PlanRefused, match="SD 3.5"):
        plan_batch(["a fox"], GenerationOptions(model="core"), grid=grid)
    plan = plan_batch(["a fox"], GenerationOptions(model="sd3.5-large"), grid=grid)
    assert [image.options.cfg_scale for image in plan.images] == [2.0, 6.0]


def test_past_max_images_the_plan_is_refused_with_the_count():
    with pytest.raises(PlanRefused, match=r"would make 200 images \(100 prompts × 2 images\).*at most 100"):
        plan_batch(["{a|b|c|d|e|f|g|h|i|j} {a|b|c|d|e|f|g|h|i|j}"], GenerationOptions(), 2, "combinatorial")


# --- the form: preview equals the reservation ----------------------------------------------------------------

def post_form(client, path, prompts, **fields):
    data = {"csrf_token": csrf_for(client), **{f"prompts-{i}": p for i, p in enumerate(prompts)}, **fields}
    return client.post(path, data=data)


def text_of(html):
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def preview_credits(html):
    return float(re.search(r'id="expected-credits"[^>]*value="([^"]*)"', html, re.S).group(1))


CASES = [
    # (prompts, fields, images, credits)
    (["a {red|blue} {fox|owl}"], {"expand": "combinatorial"}, 4, 12),
    (["a {red|blue} {fox|owl}"], {"expand": "combinatorial", "images_per_prompt": "2", "model": "ultra"}, 8, 64),
    (["a {red|blue} fox", "an {owl|heron|crane}"], {"expand": "combinatorial", "model": "sd3.5-flash"}, 5, 12.5),
    (["a {red|blue|green} {fox|owl}"], {"expand": "random", "samples": "3", "seed": "77", "seed_locked": "y"}, 3, 9),
    (["a fox"], {"grid_x_option": "model", "grid_x_values": "core, sd3.5-flash",
                 "grid_y_option": "style_preset", "grid_y_values": "anime, photographic"}, 4, 11),
    (["a fox"], {"grid_x_option": "model", "grid_x_values": "ultra, sd3.5-large, sd3.5-medium",
                 "grid_y_option": "seed", "grid_y_values": "1, 2",
                 "grid_z_option": "aspect_ratio", "grid_z_values": "1:1,16:9"}, 12, 72),
    (["a fox in snow"], {"grid_x_option": "prompt_sr", "grid_x_values": "snow, rain, fog", "model": "sd3.5-large",
                         "grid_y_option": "cfg_scale", "grid_y_values": "3, 7"}, 6, 39),
]


@pytest.mark.parametrize(("prompts", "fields", "images", "credits"), CASES)
def test_the_preview_prices_exactly_what_is_reserved(app, client, prompts, fields, images, credits):
    preview = post_form(client, "/preview", prompts, **fields).get_data(as_text=True)
    assert preview_credits(preview) == credits
    assert f"{images} images" in text_of(preview) and f"{credits:g} credits" in text_of(preview)
    shown = preview_credits(preview)
    response = post_form(client, "/", prompts, expected_credits=f"{shown:g}", **fields)
    assert response.status_code == 303, text_of(response.get_data(as_text=True))[:600]
    with app.app_context():
        rows = db.session.scalars(sa.select(Generation)).all()
        assert len(rows) == images and sum(row.credits for row in rows) == credits


def test_the_preview_lists_the_first_prompts(client):
    html = text_of(post_form(client, "/preview", ["a {red|blue} {fox|owl}"], expand="combinatorial")
                   .get_data(as_text=True))
    assert "Expands to 4 prompts × 1 image = 4 images × 3 credits (Stable Image Core) = 12 credits" in html
    assert "4 prompts: a red foxa red owla blue foxa blue owl" in html  # one list item each


def test_a_template_past_max_images_is_refused_with_the_count_and_nothing_is_made(make_app):
    app = make_app(MAX_IMAGES_PER_BATCH=10)
    client = app.test_client()
    response = post_form(client, "/", ["{a|b|c} {d|e|f} {g|h}"], expand="combinatorial", images_per_prompt="2")
    html = text_of(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "This batch would make 36 images (18 prompts × 2 images); one batch may make at most 10" in html
    assert "{a|b|c} {d|e|f} {g|h}" in html  # nothing typed is lost
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 0


def test_a_missing_wildcard_is_refused_next_to_the_prompts(app, client):
    response = post_form(client, "/", ["a __colors__ fox"], expand="combinatorial")
    assert response.status_code == 422
    assert "There is no wildcard list named __colors__" in response.get_data(as_text=True)


def test_a_template_reads_the_users_own_list_and_never_another_users_unshared_one(accounts_app):
    ada, bob = make_user(accounts_app, "ada@example.com"), make_user(accounts_app, "bob@example.com")
    admin = make_user(accounts_app, "root@example.com", admin=True)
    with accounts_app.app_context():
        db.session.add_all([WildcardList(owner_id=ada, name="colors", values=["red", "blue"]),
                            WildcardList(owner_id=bob, name="colors", values=["secret"]),
                            WildcardList(owner_id=bob, name="private", values=["hidden"]),
                            WildcardList(owner_id=admin, name="animals", values=["fox", "owl"], shared=True),
                            WildcardList(owner_id=admin, name="colors", values=["shared-colour"], shared=True)])
        db.session.commit()
        lists = wildcards.lists_for(require_user("ada@example.com"))
        assert lists == {"colors": ["red", "blue"], "animals": ["fox", "owl"]}
        prompts = plan_batch(["a __colors__ __animals__"], GenerationOptions(), expand_mode="combinatorial",
                             lists=lists).prompts
        assert prompts == ["a red fox", "a red owl", "a blue fox", "a blue owl"]
        with pytest.raises(PlanRefused, match="__private__"):
            plan_batch(["a __private__"], GenerationOptions(), expand_mode="combinatorial", lists=lists)


def test_a_grid_image_links_back_to_its_grid_from_its_detail_page(app, client):
    response = post_form(client, "/", ["a fox"], grid_x_option="style_preset", grid_x_values="anime, none")
    assert response.status_code == 303
    with app.app_context():
        generation = db.session.scalars(sa.select(Generation).order_by(Generation.position)).all()[1]
        generation.file_name, generation.status, generation.width, generation.height = "x.png", "succeeded", 8, 8
        db.session.commit()
        gid, batch_id = generation.id, generation.batch_id
    html = text_of(client.get(f"/images/{gid}").get_data(as_text=True))
    assert "Grid cellStyle: None" in html  # the <dt> and its <dd>
    page = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert '<th scope="col">Anime</th>' in page and '<th scope="col">None</th>' in page


def test_a_huge_axis_value_is_refused_not_an_error(app, client):
    response = post_form(client, "/", ["a fox"], grid_x_option="negative_prompt", grid_x_values="x" * 200_000)
    assert response.status_code == 422
    assert "at most 10,000 characters" in response.get_data(as_text=True)


def test_the_wildcards_page_saves_imports_and_exports_a_list(app, client):
    token = csrf_for(client, "/wildcards/")
    response = client.post("/wildcards/", data={"csrf_token": token, "name": "colors", "values": "red\n\nblue\n"})
    assert response.status_code == 303
    refused = client.post("/wildcards/", data={"csrf_token": token, "name": "colors", "values": "x"})
    assert refused.status_code == 422 and "You already have a list named colors." in refused.get_data(as_text=True)
    upload = client.post("/wildcards/import", data={"csrf_token": token, "file": (io.BytesIO(
        b"# birds\nowl\r\nheron\n"), "birds.txt")}, content_type="multipart/form-data")
    assert upload.status_code == 303
    with app.app_context():
        lists = {row.name: (row.id, row.values) for row in db.session.scalars(sa.select(WildcardList))}
    assert lists["colors"][1] == ["red", "blue"] and lists["birds"][1] == ["owl", "heron"]
    exported = client.get(f"/wildcards/{lists['birds'][0]}.txt")
    assert exported.data == b"owl\nheron\n" and 'filename="birds.txt"' in exported.headers["Content-Disposition"]
    bad = client.post("/wildcards/import", data={"csrf_token": token, "file": (io.BytesIO(b"\xff\xfe\x00"),
                                                                                 "x.txt")},
                      content_type="multipart/form-data")
    assert bad.status_code == 422 and "UTF-8 text" in bad.get_data(as_text=True)
    assert client.post(f"/wildcards/{lists['colors'][0]}/delete", data={"csrf_token": token}).status_code == 303
    assert client.get(f"/wildcards/{lists['colors'][0]}").status_code == 404


def test_someone_elses_list_is_404_on_the_page(accounts_app):
    from tests_support import sign_in
    ada, _ = make_user(accounts_app, "ada@example.com"), make_user(accounts_app, "bob@example.com")
    with accounts_app.app_context():
        row = WildcardList(owner_id=ada, name="secret", values=["x"])
        db.session.add(row)
        db.session.commit()
        list_id = row.id
    client = accounts_app.test_client()
    sign_in(client, "bob@example.com")
    assert client.get(f"/wildcards/{list_id}").status_code == 404
    assert client.get(f"/wildcards/{list_id}.txt").status_code == 404
    assert "__secret__" not in client.get("/wildcards/").get_data(as_text=True)
