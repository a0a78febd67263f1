"""Share links: signed out they show only what they name (noindex, no referrer), their files come through the link,
and revoked, expired (the clock moved), guessed, neighbouring or truncated tokens answer 404; SHARE_LINKS=off."""

import io
import zipfile
from datetime import timedelta

import pytest
import sqlalchemy as sa
from factories import make_images, make_user
from tests_support import csrf_for, sign_in

import app.curation.share_links as share_links_module
from app.extensions import db
from app.models import ShareLink, utcnow

OWNER = "owner@example.com"


@pytest.fixture
def shared(make_app):
    """An accounts-mode app; the owner's two images, one in a collection, and a link to each kind."""
    app = make_app(AUTH_MODE="accounts")
    make_user(app, OWNER)
    _, (named, other) = make_images(app, "the named lighthouse", "the other harbour", owner_email=OWNER)
    owner = app.test_client()
    sign_in(owner, OWNER)
    headers = {"X-CSRFToken": csrf_for(owner)}
    collection = owner.post("/api/collections", json={"name": "For the client"}, headers=headers).get_json()
    owner.post(f"/api/collections/{collection['id']}/images", json={"image_ids": [named]}, headers=headers)
    image_link = owner.post("/api/share-links", json={"image_id": named, "expires_in_days": 1}, headers=headers)
    assert image_link.status_code == 201, image_link.get_json()
    collection_link = owner.post("/api/share-links", json={"collection_id": collection["id"],
                                                          "expires_in_days": None}, headers=headers).get_json()
    return app, owner, headers, {"named": named, "other": other, "image": image_link.get_json(),
                                 "collection": collection_link}


def path_of(url):
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def every_url(link_path, image_id):
    return [link_path, f"{link_path}/images/{image_id}/file", f"{link_path}/images/{image_id}/file?download=1",
            f"{link_path}/images/{image_id}/thumb", f"{link_path}/images.zip"]


def test_a_link_opened_signed_out_shows_only_its_image_with_noindex_and_no_referrer(shared):
    app, _, _, ids = shared
    stranger = app.test_client()
    page = stranger.get(path_of(ids["image"]["url"]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "the named lighthouse" in html and "harbour" not in html and OWNER not in html
    assert page.headers["X-Robots-Tag"] == "noindex, nofollow" and page.headers["Referrer-Policy"] == "no-referrer"
    assert '<meta name="robots" content="noindex, nofollow">' in html and 'content="no-referrer"' in html
    assert "private" in page.headers["Cache-Control"] and "no-store" in page.headers["Cache-Control"]
    assert "/images/" + str(ids["named"]) + "/file" in html and f'href="/images/{ids["named"]}' not in html
    link = path_of(ids["image"]["url"])
    for url in every_url(link, ids["named"])[1:4]:
        response = stranger.get(url)
        assert response.status_code == 200, url
        assert response.get_data()[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF") or response.get_data()
    assert stranger.get(f"{link}/images/{ids['other']}/file").status_code == 404  # not what it names
    assert stranger.get(f"/images/{ids['named']}/file").status_code == 302  # the image's own URL: sign in


def test_a_collection_link_shows_its_images_and_their_zip(shared):
    app, _, _, ids = shared
    stranger = app.test_client()
    link = path_of(ids["collection"]["url"])
    html = stranger.get(link).get_data(as_text=True)
    assert "For the client" in html and "the named lighthouse" in html and "harbour" not in html
    names = zipfile.ZipFile(io.BytesIO(stranger.get(f"{link}/images.zip").get_data())).namelist()
    assert len(names) == 1
    assert ids["collection"]["expires_at"] is None


def test_the_owners_email_shows_only_when_they_say_so(shared):
    app, owner, headers, ids = shared
    made = owner.post("/api/share-links", json={"image_id": ids["named"], "expires_in_days": 7, "show_owner": True},
                      headers=headers).get_json()
    assert f"Shared by {OWNER}" in app.test_client().get(path_of(made["url"])).get_data(as_text=True)


def test_after_revoke_every_url_of_the_link_answers_404(shared):
    app, owner, headers, ids = shared
    link = path_of(ids["collection"]["url"])
    assert owner.delete(f"/api/share-links/{ids['collection']['id']}", headers=headers).status_code == 204
    stranger = app.test_client()
    for url in every_url(link, ids["named"]):
        assert stranger.get(url).status_code == 404, url
    assert [item["id"] for item in owner.get("/api/share-links").get_json()["items"]] == [ids["image"]["id"]]


def test_after_expiry_every_url_answers_404_with_the_clock_moved(shared, monkeypatch):
    app, owner, _, ids = shared
    link = path_of(ids["image"]["url"])
    stranger = app.test_client()
    assert stranger.get(link).status_code == 200
    later = utcnow() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(share_links_module, "utcnow", lambda: later)
    for url in every_url(link, ids["named"]):
        assert stranger.get(url).status_code == 404, url
    listed = [item["id"] for item in owner.get("/api/share-links").get_json()["items"]]
    assert listed == [ids["collection"]["id"]]  # the expired one is no longer among the live links


def test_neighbouring_truncated_and_guessed_tokens_show_nothing(shared):
    app, _, _, ids = shared
    token = path_of(ids["image"]["url"]).rsplit("/", 1)[1]
    assert len(token) == 32  # 24 random bytes: 192 bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    neighbours = [token[:i] + alphabet[(alphabet.index(c) + step) % 64] + token[i + 1:]
                  for i, c in enumerate(token) for step in (1, -1)]
    truncated = [token[:n] for n in (1, 8, 16, 31)]
    longer = [token + "A", token + "/", token.upper() if token.upper() != token else token.lower()]
    stranger = app.test_client()
    for guess in [*neighbours, *truncated, *longer, "x" * 32]:
        if guess == token:
            continue
        for url in every_url(f"/s/{guess}", ids["named"]):
            response = stranger.get(url)
            assert response.status_code == 404, url
            assert "lighthouse" not in response.get_data(as_text=True)


def test_only_the_tokens_hash_is_stored(shared):
    app, _, _, ids = shared
    token = path_of(ids["image"]["url"]).rsplit("/", 1)[1]
    with app.app_context():
        stored = db.session.scalars(sa.select(ShareLink)).all()
        assert all(token not in (link.token_hash or "") for link in stored)
        assert all(len(link.token_hash) == 64 for link in stored)


def test_links_to_someone_elses_image_or_with_another_expiry_are_refused(shared):
    app, owner, headers, ids = shared
    make_user(app, "other@example.com")
    other = app.test_client()
    sign_in(other, "other@example.com")
    refused = other.post("/api/share-links", json={"image_id": ids["named"], "expires_in_days": 7},
                         headers={"X-CSRFToken": csrf_for(other)})
    assert refused.status_code == 404
    assert other.delete(f"/api/share-links/{ids['image']['id']}",
                        headers={"X-CSRFToken": csrf_for(other)}).status_code == 404
    assert owner.post("/api/share-links", json={"image_id": ids["named"], "expires_in_days": 3},
                      headers=headers).status_code == 422
    both = owner.post("/api/share-links", json={"image_id": ids["named"], "collection_id": 1,
                                                "expires_in_days": 1}, headers=headers)
    assert both.status_code == 422


def test_links_are_made_listed_and_revoked_from_the_pages(shared):
    app, owner, _, ids = shared
    token = csrf_for(owner)
    made = owner.post("/share-links/", data={"csrf_token": token, "generation_id": ids["named"],
                                             "expires_in_days": "30"})
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and "/s/" in html and "It is shown only now" in html
    listed = owner.get("/share-links/").get_data(as_text=True)
    assert listed.count("Revoke</button>") == 3 and "/s/" not in listed
    revoked = owner.post(f"/share-links/{ids['image']['id']}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert owner.get("/share-links/").get_data(as_text=True).count("Revoke</button>") == 2


def test_share_links_off_turns_every_part_of_them_off(make_app):
    app = make_app(AUTH_MODE="accounts", SHARE_LINKS=False)
    make_user(app, OWNER)
    _, (image,) = make_images(app, "a lighthouse", owner_email=OWNER)
    owner = app.test_client()
    sign_in(owner, OWNER)
    answer = owner.post("/api/share-links", json={"image_id": image, "expires_in_days": 1},
                        headers={"X-CSRFToken": csrf_for(owner)})
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "share_links_off"
    assert owner.get("/share-links/").status_code == 404
    assert app.test_client().get("/s/" + "A" * 32).status_code == 404
    assert "Create share link" not in owner.get(f"/images/{image}").get_data(as_text=True)
