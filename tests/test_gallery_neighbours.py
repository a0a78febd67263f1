"""The detail page's previous and next in gallery order, scoped like the gallery, fit / 100 %, and the larger view's
data on every image link."""

import html
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from factories import make_user
from tests_support import sign_in

from app.extensions import db
from app.media.neighbours import neighbour_statement
from app.media_store.local import LocalStore
from app.models import Batch, Generation

SAME = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def add_images(app, owner_id, prompts_and_times):
    """Stored images of one owner, one batch; returns their ids in the order given."""
    with app.app_context():
        batch = Batch(owner_id=owner_id)
        db.session.add(batch)
        for i, (prompt, created) in enumerate(prompts_and_times):
            name = f"aa/{owner_id}-{i}.png"
            LocalStore(app.config["MEDIA_ROOT"]).put(name, b"\x89PNG fake", "image/png")
            batch.generations.append(Generation(
                position=i, prompt=prompt, provider="demo", status="succeeded", created_at=created, owner_id=owner_id,
                file_name=name, mime_type="image/png", width=16, height=9))
        db.session.commit()
        return [g.id for g in batch.generations]


def links(page):
    """The detail page's (previous, next) image ids, None where there is none."""
    found = {rel: int(ident) for rel, ident in re.findall(r'rel="(prev|next)" href="/images/(\d+)"', page)}
    return found.get("prev"), found.get("next")


def walk(client, start, rel_index):
    """Follow one direction's links from an image to the end; return the ids seen, the start included."""
    seen = [start]
    while (following := links(client.get(f"/images/{seen[-1]}").get_data(as_text=True))[rel_index]) is not None:
        seen.append(following)
    return seen


@pytest.fixture
def world(make_app):
    """Two members whose images interleave in time (three of ada's share one creation time), and an admin."""
    app = make_app(AUTH_MODE="accounts")
    ada, bob = make_user(app, "ada@example.com"), make_user(app, "bob@example.com")
    make_user(app, "admin@example.com", admin=True)
    ada_ids = add_images(app, ada, [("ada oldest", datetime(2026, 1, 1, tzinfo=UTC)), ("ada tie 1", SAME),
                                    ("ada tie 2", SAME), ("ada tie 3", SAME),
                                    ("ada newest", datetime(2026, 1, 5, tzinfo=UTC))])
    bob_ids = add_images(app, bob, [("bob old", datetime(2026, 1, 1, 12, tzinfo=UTC)),
                                    ("bob new", datetime(2026, 1, 4, tzinfo=UTC))])
    with app.app_context():  # a failure without an image is not in the gallery, so no link may lead to it
        batch = db.session.get(Batch, db.session.get(Generation, ada_ids[0]).batch_id)
        batch.generations.append(Generation(position=9, prompt="ada failed", provider="demo", status="failed",
                                            owner_id=ada, created_at=datetime(2026, 1, 3, tzinfo=UTC)))
        db.session.commit()
    return app, ada_ids, bob_ids


def gallery_order(client):
    """Every image id of the gallery, newest first, following its pages."""
    ids, url = [], "/all/"
    while url:
        page = client.get(url).get_data(as_text=True)
        ids += [int(i) for i in re.findall(r'<a [^>]*data-view="(\d+)"', page)]
        more = re.search(r'<li class="load-more">\s*<a href="([^"]+)"', page)
        url = html.unescape(more.group(1)) if more else None
    return ids


@pytest.mark.parametrize("who", ["ada@example.com", "admin@example.com"])
def test_next_walks_the_gallery_order_and_previous_walks_it_back(world, who):
    app, ada_ids, _ = world
    client = app.test_client()
    sign_in(client, who)
    order = gallery_order(client)
    assert len(order) == (5 if who.startswith("ada") else 7)
    assert walk(client, order[0], 1) == order
    assert walk(client, order[-1], 0) == order[::-1]
    assert links(client.get(f"/images/{order[0]}").get_data(as_text=True))[0] is None


def test_a_members_neighbours_skip_everyone_elses_images(world):
    app, ada_ids, bob_ids = world
    client = app.test_client()
    sign_in(client, "ada@example.com")
    # Newest first: ada newest, [bob new], [ada failed], ties 3, 2, 1 (by id), [bob old], ada oldest.
    assert walk(client, ada_ids[4], 1) == [ada_ids[4], ada_ids[3], ada_ids[2], ada_ids[1], ada_ids[0]]
    for page in (client.get(f"/images/{ident}").get_data(as_text=True) for ident in ada_ids):
        assert not set(links(page)) & set(bob_ids)
    assert client.get(f"/images/{bob_ids[1]}").status_code == 404


def test_an_admin_walks_through_everyones_images(world):
    app, ada_ids, bob_ids = world
    client = app.test_client()
    sign_in(client, "admin@example.com")
    assert links(client.get(f"/images/{bob_ids[1]}").get_data(as_text=True)) == (ada_ids[4], ada_ids[3])


def test_each_neighbour_is_one_row_from_the_gallerys_own_index(world):
    app, ada_ids, _ = world
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the plan is PostgreSQL's")
        here = db.session.get(Generation, ada_ids[2])
        # A tiny table would be scanned anyway, or read by any index and sorted: the plan a large one gets is wanted.
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        db.session.execute(sa.text("SET LOCAL enable_sort = off"))
        for visible, index in ((Generation.owner_id == here.owner_id, "ix_generations_owner_created_at_id"),
                               (sa.true(), "ix_generations_created_at_id")):
            for newer in (True, False):
                statement = neighbour_statement(here, visible, newer)
                compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
                plan = "\n".join(db.session.scalars(sa.text(f"EXPLAIN {compiled}")))
                assert f"Index Scan Backward using {index}" in plan or f"Index Scan using {index}" in plan, plan
                assert "Sort" not in plan and "Limit" in plan, plan


def test_the_detail_page_fits_by_default_and_shows_100_percent_on_request(world):
    app, ada_ids, _ = world
    client = app.test_client()
    sign_in(client, "ada@example.com")
    fitted = client.get(f"/images/{ada_ids[0]}").get_data(as_text=True)
    assert 'name="size" value="actual"' in fitted and 'aria-pressed="false"' in fitted
    assert "actual-size" not in fitted
    actual = client.get(f"/images/{ada_ids[0]}?size=actual").get_data(as_text=True)
    assert 'name="size" value="fit"' in actual and 'aria-pressed="true"' in actual
    assert re.search(r'class="detail-image [^"]*actual-size" id="detail-image"', actual)
    assert client.get(f"/images/{ada_ids[0]}?size=%00nonsense").status_code == 200


def test_every_image_link_carries_what_the_larger_view_shows(world):
    app, ada_ids, _ = world
    client = app.test_client()
    sign_in(client, "ada@example.com")
    with app.app_context():
        batch_id = db.session.get(Generation, ada_ids[0]).batch_id
    newest = ada_ids[4]
    for path in ("/all/", f"/generate/{batch_id}", f"/images/{newest}"):
        page = client.get(path).get_data(as_text=True)
        tag = re.search(rf'<a [^>]*data-view="{newest}"[^>]*>', page).group(0)
        assert re.search(rf'data-view-src="/images/{newest}/file\?v=[0-9a-f]{{12}}"', tag), path
        assert re.search(rf'data-view-download="/images/{newest}/file\?v=[0-9a-f]{{12}}&amp;download=1"', tag)
        assert f'data-view-reuse="/?reuse={newest}"' in tag and f'data-view-details="/images/{newest}"' in tag
        assert 'data-view-width="16" data-view-height="9" data-view-prompt="ada newest"' in tag
        assert page.count('<dialog class="lightbox"') == 1 and "js/lightbox.js" in page
