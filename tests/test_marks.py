"""Stars and ratings: the API and the page forms, the Starred filter, every sort paged by keyset with no image
twice or missed, and a fixed number of queries per page whatever the sort."""

import pytest
import sqlalchemy as sa
from factories import make_images, make_user
from tests_support import csrf_for, sign_in

from app.extensions import db
from app.gallery.pages import Cursor

OWNER = "owner@example.com"


@pytest.fixture
def marked(make_app):
    """Seven images of one member's; two starred, four rated (one 5, two 3, one 1)."""
    app = make_app(AUTH_MODE="accounts", GALLERY_PAGE_SIZE=2)
    make_user(app, OWNER)
    _, ids = make_images(app, *[f"picture {i}" for i in range(7)], owner_email=OWNER)
    client = app.test_client()
    sign_in(client, OWNER)
    headers = {"X-CSRFToken": csrf_for(client)}
    for image in (ids[1], ids[4]):
        assert client.put(f"/api/images/{image}/star", headers=headers).get_json()["starred"] is True
    for image, value in ((ids[2], 5), (ids[0], 3), (ids[5], 3), (ids[6], 1)):
        assert client.put(f"/api/images/{image}/rating", json={"rating": value}, headers=headers).status_code == 200
    return app, client, headers, ids


def walk(client, query):
    """Every image id of the API's pages for this query, following `next`, and how many pages it took."""
    seen, cursor, pages = [], None, 0
    while True:
        url = f"/api/images?limit=2&{query}" + (f"&before={cursor}" if cursor else "")
        body = client.get(url).get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return seen, pages


def test_every_sort_pages_by_keyset_through_every_image_once(marked):
    _, client, _, ids = marked
    newest, pages = walk(client, "sort=newest")
    assert newest == ids[::-1] and pages == 4
    assert walk(client, "sort=oldest")[0] == ids
    by_rating, _ = walk(client, "sort=rating")
    # 5, then the two 3s newest first, then 1, then the unrated newest first.
    assert by_rating == [ids[2], ids[5], ids[0], ids[6], ids[4], ids[3], ids[1]]


def test_the_rating_cursor_carries_the_rating_and_reads_back(marked):
    _, client, _, _ = marked
    cursor = client.get("/api/images?limit=2&sort=rating").get_json()["next"]
    assert cursor.startswith("3-")
    assert str(Cursor.parse(cursor)) == cursor
    assert Cursor.parse("6-1-1") is None and Cursor.parse("x-1-1") is None


def test_the_starred_filter_and_the_body_fields(marked):
    _, client, headers, ids = marked
    starred, _ = walk(client, "starred=true")
    assert starred == [ids[4], ids[1]]
    body = client.get(f"/api/images/{ids[2]}").get_json()
    assert {key: body[key] for key in ("starred", "my_rating", "rating_average", "rating_count")} == {
        "starred": False, "my_rating": 5, "rating_average": 5.0, "rating_count": 1}
    cleared = client.delete(f"/api/images/{ids[2]}/rating", headers=headers).get_json()
    assert (cleared["my_rating"], cleared["rating_count"], cleared["rating_average"]) == (None, 0, None)
    assert client.delete(f"/api/images/{ids[1]}/star", headers=headers).get_json()["starred"] is False
    assert client.put(f"/api/images/{ids[1]}/rating", json={"rating": 6}, headers=headers).status_code == 422


def test_the_gallery_keeps_filters_and_sort_in_its_links_and_scrolls_by_revealed(marked):
    _, client, _, ids = marked
    html = client.get("/all/?sort=rating&status=succeeded").get_data(as_text=True)
    assert 'hx-trigger="revealed, click"' in html
    more = html.split('class="load-more"')[1].split("</li>")[0]
    assert "sort=rating" in more and "status=succeeded" in more and "before=3-" in more
    assert '<option value="rating" selected>' in html
    starred = client.get("/all/?starred=1&sort=oldest").get_data(as_text=True)
    assert 'id="starred" name="starred" value="1" checked' in starred and "2 images match these filters" in starred


def test_the_star_and_rating_forms_work_without_javascript_and_in_place(marked):
    _, client, _, ids = marked
    token = csrf_for(client)
    back = client.post(f"/images/{ids[3]}/star", data={"csrf_token": token, "starred": "1", "next": "/all/?q=x"})
    assert back.status_code == 303 and back.headers["Location"] == "/all/?q=x"
    swapped = client.post(f"/images/{ids[3]}/rating", data={"csrf_token": token, "rating": "4", "rating_form": "1"},
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="marks-' in swapped and "4.0 ★ · 1 rating · yours 4" in swapped and 'aria-pressed="true"' in swapped
    assert client.post(f"/images/{ids[3]}/rating", data={"csrf_token": token, "rating": "9"}).status_code == 400
    assert client.post(f"/images/{ids[3]}/star", data={"starred": "1"}).status_code in (400, 403)  # no CSRF token
    detail = client.get(f"/images/{ids[3]}").get_data(as_text=True)
    assert "Your rating" in detail and "★" in detail


class Statements:
    def __init__(self):
        self.seen = []

    def __call__(self, *args):
        self.seen.append(args[2])


@pytest.mark.parametrize("sort", ["newest", "oldest", "rating"])
@pytest.mark.parametrize("starred", ["", "&starred=1"])
def test_each_page_costs_the_same_queries_whatever_the_sort_and_depth(marked, sort, starred):
    app, client, _, _ = marked
    counts = []
    url = f"/all/?sort={sort}{starred}"
    for _ in range(3):
        statements = Statements()
        with app.app_context():
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", statements)
        html = client.get(url, headers={"HX-Request": "true"} if "before=" in url else {}).get_data(as_text=True)
        sa.event.remove(engine, "before_cursor_execute", statements)
        counts.append(len(statements.seen))
        if 'class="load-more"' not in html:
            break
        url = html.split('class="load-more"')[1].split('href="')[1].split('"')[0].replace("&amp;", "&")
    # Later pages (fetched in place) skip the count and the page's chrome, so they compare with each other.
    print(sort, starred, "statements per page:", counts)
    assert len(set(counts[1:])) <= 1, counts
    assert max(counts) <= 12, counts
