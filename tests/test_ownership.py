"""Who may see and act on what: every id-taking route × owner, another member, an admin and a stranger."""

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch, make_images, make_user
from tests_support import csrf_for, sign_in

from app.accounts.users import find_user
from app.extensions import db
from app.generations import lifecycle
from app.models import Generation
from app.providers.options import GenerationOptions

# Every route that takes a batch or generation id, with what its owner (and an admin) gets.
ROUTES = [
    ("GET", "/generate/{batch}", 200),
    ("GET", "/generate/{batch}/status", 200),
    ("GET", "/generate/{batch}/images.zip", 200),
    ("GET", "/generate/{grid}/grid.png", 200),
    ("GET", "/api/batches/{batch}", 200),
    ("POST", "/generate/{batch}/cancel", 303),
    ("POST", "/generate/{batch}/retry-failed", 303),
    ("GET", "/images/{image}", 200),
    ("GET", "/images/{image}/file", 200),
    ("GET", "/images/{image}/thumb", 200),
    ("GET", "/images/{image}/delete", 200),
    ("POST", "/images/{image}/delete", 303),
    ("POST", "/generations/{image}/cancel", 303),
    ("POST", "/generations/{image}/retry", 303),
    ("GET", "/api/images/{image}", 200),
    ("DELETE", "/api/images/{image}", 204),
    ("POST", "/api/generations/{image}/cancel", 409),  # already finished: nothing to cancel
    ("POST", "/api/generations/{image}/retry", 409),  # a finished image is not retryable
    ("POST", "/api/batches/{batch}/cancel", 200),
    # Stars and ratings (tests/test_collections.py walks them for a member of a shared collection too).
    ("POST", "/images/{image}/star", 303),
    ("POST", "/images/{image}/rating", 400),  # no rating sent: refused only once the image is found
    ("PUT", "/api/images/{image}/star", 200),
    ("DELETE", "/api/images/{image}/rating", 200),
    # The gallery's bulk routes take their ids in the query (POST /all/delete: tests/test_gallery_bulk.py).
    ("GET", "/all/delete?ids={image}", 200),
    ("GET", "/all/images.zip?ids={image}", 200),
]
COVERED = {path.replace("{batch}", "<int:batch_id>").replace("{grid}", "<int:batch_id>")
           .replace("{image}", "<int:generation_id>") for _, path, _ in ROUTES}
# A share link's files take the image id after the link's token, which is the check: tests/test_share_links.py.
COVERED |= {"/s/<token>/images/<int:generation_id>/file", "/s/<token>/images/<int:generation_id>/thumb"}

# An edit starts only from one's own image: an admin, who may look at every image, still gets 404 (the result and
# its charge would be the admin's, made from someone else's picture).
EDIT_ROUTES = [
    ("GET", "/images/{image}/edit/upscale-fast", 200),
    ("POST", "/api/images/{image}/edits", 201),
]
COVERED |= {"/images/<int:generation_id>/edit/<operation>", "/api/images/<int:generation_id>/edits"}


@pytest.fixture
def world(make_app):
    """An accounts-mode app with an admin, two members, and one finished batch of the first member's."""
    app = make_app(AUTH_MODE="accounts")
    for name in ("admin", "owner", "other"):
        make_user(app, f"{name}@example.com", admin=name == "admin")
    batch_id, (image_id,) = make_images(app, "the owner's lighthouse", owner_email="owner@example.com")
    with app.app_context():  # and a comparison grid of theirs, still queued
        grid = lifecycle.create_batch(find_user("owner@example.com"), ["a grid"], grid={
            "x": {"option": "seed", "values": [1]}}, images=[("a grid", GenerationOptions(seed=1), {"x": 0})])
        grid_id = grid.id
    return app, {"batch": batch_id, "image": image_id, "grid": grid_id}


def client_for(app, who):
    client = app.test_client()
    if who != "anonymous":
        sign_in(client, f"{who}@example.com")
    return client


def request(client, method, path, token):
    if path.startswith("/api/"):
        # A browser session on the API: the CSRF token travels in the header htmx and scripts use.
        return client.open(path, method=method, headers={"X-CSRFToken": token} if token else {}, json={})
    if method == "POST":
        return client.post(path, data={"csrf_token": token} if token else {})
    response = client.get(path)
    response.close()
    return response


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES)
@pytest.mark.parametrize("who", ["owner", "other", "admin", "anonymous"])
def test_each_route_answers_by_who_asks(world, who, method, path, allowed):
    app, ids = world
    client = client_for(app, who)
    token = csrf_for(client) if who != "anonymous" else None
    response = request(client, method, path.format(**ids), token)
    expected = {"owner": allowed, "admin": allowed, "other": 404,
                "anonymous": 401 if path.startswith("/api/") else 302}[who]
    assert response.status_code == expected


def test_every_route_that_takes_an_id_is_in_the_matrix(world):
    app, _ = world
    with_ids = {rule.rule for rule in app.url_map.iter_rules()
                if ("batch_id" in rule.arguments or "generation_id" in rule.arguments)}
    assert with_ids <= COVERED, f"add these routes to ROUTES with their expected answers: {with_ids - COVERED}"


def test_another_members_gallery_reuse_and_queue_positions_show_nothing_of_the_owner(world):
    app, ids = world
    client = client_for(app, "other")
    prompt = "owner&#39;s lighthouse"
    assert prompt not in client.get("/all/").get_data(as_text=True)
    assert prompt not in client.get("/all/?q=lighthouse").get_data(as_text=True)
    assert prompt not in client.get(f"/?reuse={ids['image']}").get_data(as_text=True)


def test_the_owner_sees_their_own_and_the_admin_sees_whose_it_is(world):
    app, ids = world
    assert "lighthouse" in client_for(app, "owner").get("/all/").get_data(as_text=True)
    admin_page = client_for(app, "admin").get("/all/").get_data(as_text=True)
    assert "lighthouse" in admin_page and "owner@example.com" in admin_page
    with app.app_context():
        other_id = find_user("other@example.com").id
    narrowed = client_for(app, "admin").get(f"/all/?owner={other_id}").get_data(as_text=True)
    assert "lighthouse" not in narrowed


def test_a_members_queue_position_counts_only_their_own_rows(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "first@example.com")
    make_user(app, "second@example.com")
    make_batch(app, *[f"first's prompt {i}" for i in range(5)], owner_email="first@example.com")
    mine, _ = make_batch(app, "second's prompt", owner_email="second@example.com")
    page = client_for(app, "second").get(f"/generate/{mine}").get_data(as_text=True)
    assert "next in line" in page and "5 ahead" not in page


def test_workers_take_turns_between_users_so_one_prompt_is_not_stuck_behind_a_long_batch(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "first@example.com")
    make_user(app, "second@example.com")
    long_batch, _ = make_batch(app, *[f"first's prompt {i}" for i in range(6)], owner_email="first@example.com")
    single, _ = make_batch(app, "second's prompt", owner_email="second@example.com")
    drain(app)  # one worker, so the order it took jobs in is the order they started
    with app.app_context():
        order = list(db.session.scalars(sa.select(Generation.batch_id).order_by(Generation.started_at)))
    assert order.index(single) <= 1, order  # taken next, not after the 6 ahead of it
    assert order.count(long_batch) == 6


@pytest.mark.parametrize(("method", "path", "allowed"), EDIT_ROUTES)
@pytest.mark.parametrize("who", ["owner", "other", "admin", "anonymous"])
def test_an_edit_starts_only_from_ones_own_image(world, who, method, path, allowed):
    app, ids = world
    client = client_for(app, who)
    token = csrf_for(client) if who != "anonymous" else None
    if path.startswith("/api/"):
        response = client.open(path.format(**ids), method=method, json={"operation": "upscale-fast"},
                               headers={"X-CSRFToken": token} if token else {})
    else:
        response = request(client, method, path.format(**ids), token)
    expected = {"owner": allowed, "admin": 404, "other": 404,
                "anonymous": 401 if path.startswith("/api/") else 302}[who]
    assert response.status_code == expected
