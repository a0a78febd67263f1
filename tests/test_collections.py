"""Collections shared with the team: members see and rate its images and nothing else of the owner's (every id
route walked from the app's url_map), editors add and remove, the owner renames and deletes, and the ZIP."""

import io
import re
import zipfile

import pytest
import sqlalchemy as sa
from factories import make_images, make_user
from tests_support import csrf_for, sign_in

from app.extensions import db
from app.models import Collection, CollectionImage, Generation

OWNER, MEMBER, ADMIN = "owner@example.com", "member@example.com", "admin@example.com"
# Each argument a route can take, and what to put in it for the walk.
ARGUMENTS = {"generation_id", "batch_id", "collection_id", "link_id", "token", "filename"}
# The routes a team member may use on an image of a collection shared with them: looking, downloading, marking.
VIEWING = {("GET", "/images/<int:generation_id>"), ("GET", "/images/<int:generation_id>/file"),
           ("GET", "/images/<int:generation_id>/thumb"), ("POST", "/images/<int:generation_id>/star"),
           ("POST", "/images/<int:generation_id>/rating"), ("GET", "/api/images/<int:generation_id>"),
           *((method, f"/api/images/<int:generation_id>/{mark}") for method in ("PUT", "DELETE")
             for mark in ("star", "rating"))}


@pytest.fixture
def team(make_app):
    """An accounts-mode app: the owner with a shared collection of one image and a second, unshared image."""
    app = make_app(AUTH_MODE="accounts")
    for email in (OWNER, MEMBER, ADMIN):
        make_user(app, email, admin=email == ADMIN)
    batch_id, (shared_id, private_id) = make_images(app, "a shared lighthouse", "a private harbour",
                                                    owner_email=OWNER)
    owner = client_of(app, OWNER)
    made = owner.post("/api/collections", json={"name": "Keepers", "visibility": "team-view"},
                      headers={"X-CSRFToken": csrf_for(owner)})
    assert made.status_code == 201, made.get_json()
    collection_id = made.get_json()["id"]
    added = owner.post(f"/api/collections/{collection_id}/images", json={"image_ids": [shared_id]},
                       headers={"X-CSRFToken": csrf_for(owner)})
    assert added.get_json()["changed"] == 1
    return app, {"batch": batch_id, "shared": shared_id, "private": private_id, "collection": collection_id}


def client_of(app, email):
    client = app.test_client()
    sign_in(client, email)
    return client


def call(client, method, path, token):
    """A request as a browser session sends it: CSRF in the form, or in the header for the API."""
    if path.startswith("/api/"):
        body = {"rating": 3} if path.endswith("/rating") else {"operation": "upscale-fast"} if path.endswith(
            "/edits") else {}
        return client.open(path, method=method, headers={"X-CSRFToken": token}, json=body)
    if method in ("GET", "HEAD"):
        response = client.open(path, method=method)
        response.close()
        return response
    return client.open(path, method=method, data={"csrf_token": token, "rating": "3"})


def id_routes(app):
    """Every (method, rule) of the app that takes an id in its path."""
    for rule in app.url_map.iter_rules():
        if rule.arguments & {"generation_id", "batch_id"}:
            for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
                yield method, rule


def test_a_member_gets_404_from_every_id_route_for_the_owners_other_image(team):
    app, ids = team
    member = client_of(app, MEMBER)
    token = csrf_for(member)
    walked = []
    for method, rule in id_routes(app):
        path = rule.rule.replace("<int:generation_id>", str(ids["private"])).replace(
            "<int:batch_id>", str(ids["batch"])).replace("<token>", "x" * 32).replace("<operation>", "upscale-fast")
        response = call(member, method, path, token)
        assert response.status_code == 404, (method, path, response.status_code)
        walked.append((method, rule.rule))
    assert len(walked) >= 25, walked  # the walk reached the image, batch, API and share routes


def test_a_member_may_look_at_and_mark_the_shared_image_and_nothing_more(team):
    app, ids = team
    member = client_of(app, MEMBER)
    token = csrf_for(member)
    for method, rule in id_routes(app):
        path = rule.rule.replace("<int:generation_id>", str(ids["shared"])).replace(
            "<int:batch_id>", str(ids["batch"])).replace("<token>", "x" * 32).replace("<operation>", "upscale-fast")
        response = call(member, method, path, token)
        if (method, rule.rule) in VIEWING:
            assert response.status_code in (200, 303), (method, path, response.status_code)
        else:
            assert response.status_code == 404, (method, path, response.status_code)
    assert db_row_exists(app, ids["shared"])  # nothing a viewer did deleted it


def db_row_exists(app, generation_id):
    with app.app_context():
        return db.session.get(Generation, generation_id) is not None


def test_the_members_gallery_and_search_show_nothing_of_the_owners_but_the_collection_does(team):
    app, ids = team
    member = client_of(app, MEMBER)
    gallery = member.get("/all/").get_data(as_text=True)
    assert "lighthouse" not in gallery and "harbour" not in gallery
    collection = member.get(f"/all/?collection={ids['collection']}").get_data(as_text=True)
    assert "a shared lighthouse" in collection and "harbour" not in collection
    # Nothing offered that would only answer 404: no Reuse, no Delete, no link to the owner's batch.
    assert 'title="Reuse prompt and settings"' not in collection and f"/generate/{ids['batch']}" not in collection
    assert 'title="Delete"' not in collection and 'id="bulk-delete"' in collection.split("hidden>Delete selected")[0]
    assert "Keepers" in member.get("/collections/").get_data(as_text=True)
    listed = member.get(f"/api/images?collection={ids['collection']}").get_json()["items"]
    assert [item["id"] for item in listed] == [ids["shared"]]
    assert member.get(f"/?reuse={ids['shared']}").status_code in (200, 302)
    assert "a shared lighthouse" not in member.get(f"/?reuse={ids['shared']}").get_data(as_text=True)


def test_each_member_rates_for_themselves_and_the_average_and_count_show(team):
    app, ids = team
    owner, member = client_of(app, OWNER), client_of(app, MEMBER)
    owner.put(f"/api/images/{ids['shared']}/rating", json={"rating": 5}, headers={"X-CSRFToken": csrf_for(owner)})
    body = member.put(f"/api/images/{ids['shared']}/rating", json={"rating": 2},
                      headers={"X-CSRFToken": csrf_for(member)}).get_json()
    assert (body["my_rating"], body["rating_average"], body["rating_count"]) == (2, 3.5, 2)
    mine = owner.get(f"/api/images/{ids['shared']}").get_json()
    assert (mine["my_rating"], mine["rating_average"], mine["rating_count"]) == (5, 3.5, 2)
    page = member.get(f"/all/?collection={ids['collection']}").get_data(as_text=True)
    assert "3.5 ★ · 2 ratings · yours 2" in page


def test_a_private_collection_is_404_to_a_member_and_viewers_cannot_add_but_editors_can(team):
    app, ids = team
    owner, member = client_of(app, OWNER), client_of(app, MEMBER)
    owner_token, member_token = csrf_for(owner), csrf_for(member)
    _, (members_image,) = make_images(app, "the member's own fox", owner_email=MEMBER)
    add = {"image_ids": [members_image]}
    refused = member.post(f"/api/collections/{ids['collection']}/images", json=add,
                          headers={"X-CSRFToken": member_token})
    assert refused.status_code == 403
    owner.patch(f"/api/collections/{ids['collection']}", json={"visibility": "team-edit"},
                headers={"X-CSRFToken": owner_token})
    assert member.post(f"/api/collections/{ids['collection']}/images", json=add,
                       headers={"X-CSRFToken": member_token}).get_json()["changed"] == 1
    assert member.patch(f"/api/collections/{ids['collection']}", json={"name": "Mine now"},
                        headers={"X-CSRFToken": member_token}).status_code == 403
    owner.patch(f"/api/collections/{ids['collection']}", json={"visibility": "private"},
                headers={"X-CSRFToken": owner_token})
    assert member.get(f"/api/collections/{ids['collection']}").status_code == 404
    assert member.get(f"/all/?collection={ids['collection']}").status_code == 404
    assert member.get(f"/images/{ids['shared']}").status_code == 404  # no longer shared: 404 again


def test_deleting_a_collection_deletes_no_image_and_an_image_may_be_in_several(team):
    app, ids = team
    owner = client_of(app, OWNER)
    token = csrf_for(owner)
    second = owner.post("/api/collections", json={"name": "Also"}, headers={"X-CSRFToken": token}).get_json()
    owner.post(f"/api/collections/{second['id']}/images", json={"image_ids": [ids["shared"]]},
               headers={"X-CSRFToken": token})
    assert owner.delete(f"/api/collections/{ids['collection']}", headers={"X-CSRFToken": token}).status_code == 204
    assert db_row_exists(app, ids["shared"])
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CollectionImage)) == 1
        assert db.session.get(Collection, second["id"]) is not None


def test_a_selection_makes_a_new_collection_in_place_and_without_javascript(team):
    app, ids = team
    owner = client_of(app, OWNER)
    token = csrf_for(owner)
    answer = owner.post("/collections/add", data={"ids": [ids["shared"], ids["private"]], "new_name": "Picked",
                                                  "csrf_token": token}, headers={"HX-Request": "true"})
    assert answer.status_code == 204 and "collection=" in answer.headers["HX-Redirect"]
    asked = owner.get(f"/collections/add?ids={ids['private']}&collection_id={ids['collection']}")
    assert "Add 1 image to “Keepers”?" in asked.get_data(as_text=True)
    done = owner.post("/collections/add", data={"ids": [ids["private"]], "collection_id": ids["collection"],
                                                "csrf_token": token})
    assert done.status_code == 303
    assert owner.get(f"/api/collections/{ids['collection']}").get_json()["image_count"] == 2
    empty = owner.post("/collections/add", data={"new_name": "", "ids": [ids["private"]], "csrf_token": token},
                       headers={"HX-Request": "true"})
    assert "Give the collection a name." in empty.get_data(as_text=True)


def test_the_collection_downloads_as_one_zip_for_the_owner_and_the_team(team):
    app, ids = team
    for email in (OWNER, MEMBER):
        response = client_of(app, email).get(f"/collections/{ids['collection']}/images.zip")
        assert response.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(response.get_data())).namelist()
        assert len(names) == 1 and re.match(rf"{ids['shared']}-a-shared-lighthouse\.", names[0])


def test_the_owner_renames_and_sets_the_cover_and_a_bad_name_is_told_next_to_the_field(team):
    app, ids = team
    owner = client_of(app, OWNER)
    token = csrf_for(owner)
    bad = owner.post(f"/collections/{ids['collection']}/settings", data={"csrf_token": token, "name": "  ",
                                                                           "visibility": "team-view"})
    assert bad.status_code == 422 and 'id="name-error"' in bad.get_data(as_text=True)
    good = owner.post(f"/collections/{ids['collection']}/settings",
                      data={"csrf_token": token, "name": "Best", "visibility": "team-view",
                            "cover_id": str(ids["shared"])})
    assert good.status_code == 303
    body = owner.get(f"/api/collections/{ids['collection']}").get_json()
    assert (body["name"], body["cover_id"]) == ("Best", ids["shared"])
    assert client_of(app, MEMBER).get(f"/collections/{ids['collection']}/settings").status_code == 404
