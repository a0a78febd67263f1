"""Monthly allowances: reserved with the rows, refunded when the API does not charge, atomic under concurrency."""

import re
import threading

import pytest
import requests
import sqlalchemy as sa
from conftest import drain
from factories import advance, make_batch, make_user
from flask_migrate import upgrade
from tests_support import csrf_for, sign_in
from werkzeug.serving import make_server

from app.accounts.users import find_user
from app.extensions import db
from app.generations import lifecycle, spending
from app.models import Batch, Generation, Status

CORE = 3  # credits per Stable Image Core image


@pytest.fixture
def member_app(make_app):
    """Accounts mode with a member allowed 20 credits a month."""
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "ann@example.com", monthly_credits=20)
    return app


def used(app, email="ann@example.com"):
    with app.app_context():
        return spending.allowance(find_user(email)).used


def submit(client, *prompts, model="core", **fields):
    data = {"csrf_token": csrf_for(client), "model": model, "aspect_ratio": "1:1", "output_format": "png", **fields}
    data.update({f"prompts-{i}": text for i, text in enumerate(prompts)})
    return client.post("/", data=data)


def test_a_batch_reserves_its_cost_and_the_home_page_says_what_is_left(member_app):
    client = member_app.test_client()
    sign_in(client, "ann@example.com")
    assert submit(client, "one", "two").status_code == 303
    assert used(member_app) == 2 * CORE
    assert "You have 14 of 20 credits left this month." in client.get("/").get_data(as_text=True)


def test_a_batch_over_the_allowance_is_refused_next_to_generate_and_keeps_everything(member_app):
    client = member_app.test_client()
    sign_in(client, "ann@example.com")
    prompts = [f"prompt number {i}" for i in range(7)]  # 7 x 3 = 21 > 20
    response = submit(client, *prompts)
    html = response.get_data(as_text=True)
    assert response.status_code == 402
    assert re.search(r'id="spending-error"[^>]*>This batch costs 21 credits; you have 20 left this month\.', html)
    assert all(prompt in html for prompt in prompts)
    assert used(member_app) == 0
    with member_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0


def test_the_allowance_covers_every_image_and_refuses_the_batch_when_short(member_app):
    client = member_app.test_client()
    sign_in(client, "ann@example.com")
    response = submit(client, "a fox", "an owl", images_per_prompt="4")  # 8 × 3 = 24 > 20
    assert response.status_code == 402
    assert re.search(r'id="spending-error"[^>]*>This batch costs 24 credits; you have 20 left this month\.',
                     response.get_data(as_text=True))
    assert count_batches(member_app) == 0
    assert submit(client, "a fox", "an owl", images_per_prompt="3").status_code == 303  # 6 × 3 = 18
    assert used(member_app) == 18
    with member_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Generation.id))) == 6


def test_the_installation_wide_limit_applies_to_everyone(make_app):
    app = make_app(AUTH_MODE="accounts", MONTHLY_CREDIT_LIMIT=5)
    make_user(app, "ann@example.com")
    client = app.test_client()
    sign_in(client, "ann@example.com")
    assert submit(client, "one").status_code == 303
    response = submit(client, "two")
    assert response.status_code == 402
    assert "This batch costs 3 credits; this installation has 2 left this month." in response.get_data(as_text=True)


@pytest.mark.parametrize(("marker", "refunded"), [
    ("[moderate]", True),  # 403: Stability does not charge
    ("[e422]", True),
    ("[garbage]", True),
    ("[filter]", False),  # a blurred image was made and charged
    ("", False),
])
def test_what_the_api_does_not_charge_is_given_back(make_app, fake, marker, refunded):
    from conftest import API_KEY

    app = make_app(AUTH_MODE="accounts", STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url)
    make_user(app, "ann@example.com", monthly_credits=20)
    make_batch(app, f"a harbour {marker}", owner_email="ann@example.com")
    assert used(app) == CORE
    drain(app)
    assert used(app) == (0 if refunded else CORE)


def test_canceling_a_queued_image_gives_its_credits_back_and_retrying_reserves_again(member_app):
    _, (first, _) = make_batch(member_app, "one", "two", owner_email="ann@example.com")
    with member_app.app_context():
        lifecycle.cancel_generation(first)
        assert spending.allowance(find_user("ann@example.com")).used == CORE
        lifecycle.cancel_generation(first)  # a second cancel changes nothing, and refunds nothing
        assert spending.allowance(find_user("ann@example.com")).used == CORE
        assert lifecycle.retry(first)
        assert spending.allowance(find_user("ann@example.com")).used == 2 * CORE


def test_a_running_image_that_is_canceled_keeps_its_charge(member_app):
    _, (gid,) = make_batch(member_app, "one", owner_email="ann@example.com")
    advance(member_app, gid, Status.RUNNING)
    with member_app.app_context():
        lifecycle.cancel_generation(gid)
        assert spending.allowance(find_user("ann@example.com")).used == CORE


def test_a_retry_over_the_allowance_is_refused_and_changes_nothing(member_app):
    _, (gid, *_) = make_batch(member_app, *[f"p{i}" for i in range(6)], owner_email="ann@example.com")  # 18 of 20
    with member_app.app_context():
        lifecycle.cancel_generation(gid)  # 15 used
    make_batch(member_app, "one more", owner_email="ann@example.com")  # 18
    with member_app.app_context():
        user = find_user("ann@example.com")
        user.monthly_credits = 18
        db.session.commit()
        with pytest.raises(spending.OverAllowance):
            lifecycle.retry(gid)
        assert db.session.get(Generation, gid).status == Status.CANCELED
        assert spending.allowance(user).used == 18


def serve(app):
    """The app on a real threaded HTTP server, so requests really run at the same time."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Joined on close, so no request thread still holds a database connection when the test ends.
    server.daemon_threads, server.block_on_close = False, True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}"


def concurrent_submissions(app, count=20):
    """Sign in once, then send `count` one-prompt batches at the same moment; return their statuses."""
    browser = app.test_client()  # the same app, so its session cookie opens the server's pages too
    sign_in(browser, "ann@example.com")
    token = csrf_for(browser)
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    cookie = browser.get_cookie(cookie_name).value
    server, base = serve(app)
    try:
        barrier, statuses = threading.Barrier(count), []

        def post() -> None:
            worker = requests.Session()
            worker.cookies.set(cookie_name, cookie)
            barrier.wait()
            response = worker.post(base + "/", data={"csrf_token": token, "prompts-0": "a cat", "model": "core",
                                                     "aspect_ratio": "1:1", "output_format": "png"},
                                   allow_redirects=False, timeout=60)
            statuses.append(response.status_code)

        threads = [threading.Thread(target=post) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return statuses
    finally:
        server.shutdown()
        server.server_close()


def allowance_for_three(app):
    make_user(app, "ann@example.com", monthly_credits=3 * CORE + 1)


def count_batches(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Batch))


def test_twenty_simultaneous_submissions_against_an_allowance_for_three_let_exactly_three_through(make_app):
    app = make_app(AUTH_MODE="accounts")
    allowance_for_three(app)
    statuses = concurrent_submissions(app)
    assert sorted(statuses) == [303] * 3 + [402] * 17
    assert count_batches(app) == 3 and used(app) == 3 * CORE


def test_the_same_holds_on_sqlite(make_app, tmp_path):
    app = make_app(AUTH_MODE="accounts", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'spend.db'}")
    with app.app_context():
        upgrade()
    allowance_for_three(app)
    statuses = concurrent_submissions(app)
    assert sorted(statuses) == [303] * 3 + [402] * 17
    assert count_batches(app) == 3 and used(app) == 3 * CORE
