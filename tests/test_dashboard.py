"""rq-dashboard at /rq/: nothing from another site, state changes by POST only, RQ's errors as messages, its own CSP."""

import pytest
from factories import make_user
from redis import Redis
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry
from tests_support import PASSWORD, sign_in
from werkzeug.routing import IntegerConverter

QUEUE = "generations-u7"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
# What a link, a form or a script on another site's page makes the browser send (one header at a time, as
# browsers without Sec-Fetch-Site send only Origin or Referer).
FROM_ANOTHER_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
    # A forged Origin does not help when the browser itself says where the request came from.
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
]


@pytest.fixture
def admin(accounts_app):
    """A test client signed in as an admin of an accounts install (which mounts the dashboard)."""
    make_user(accounts_app, "boss@example.com", admin=True)
    client = accounts_app.test_client()
    assert sign_in(client, "boss@example.com", PASSWORD).status_code == 303
    return client


@pytest.fixture
def failed_registry(accounts_app):
    """QUEUE's failed registry holding one job that really failed, run by a real RQ worker."""
    connection = Redis.from_url(accounts_app.config["REDIS_URL"])
    queue = Queue(QUEUE, connection=connection)
    queue.enqueue_call("builtins.int", args=("not a number",))
    SimpleWorker([queue], connection=connection).work(burst=True)
    registry = FailedJobRegistry(queue=queue)
    assert registry.count == 1
    yield registry
    connection.close()


@pytest.mark.parametrize("headers", FROM_ANOTHER_SITE)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_requeue_from_another_site_changes_nothing_and_answers_403(admin, failed_registry, headers, method):
    response = admin.open(f"/rq/requeue/{QUEUE}", method=method, headers=headers)
    assert response.status_code == 403 and "open it from this site" in response.get_data(as_text=True)
    assert failed_registry.count == 1 and len(Queue(QUEUE, connection=failed_registry.connection)) == 0


@pytest.mark.parametrize("path", ["/rq/", "/rq/0/data/queues.json", f"/rq/0/view/jobs/{QUEUE}/failed/8/asc/1"])
@pytest.mark.parametrize("headers", FROM_ANOTHER_SITE)
def test_every_dashboard_page_refuses_another_sites_requests(admin, path, headers):
    assert admin.get(path, headers=headers).status_code == 403


def test_a_requeue_by_get_is_not_allowed_even_from_this_site(admin, failed_registry):
    response = admin.get(f"/rq/requeue/{QUEUE}", headers=SAME_ORIGIN)
    assert response.status_code == 405
    assert failed_registry.count == 1


def test_a_post_that_does_not_say_where_it_came_from_is_refused(admin, failed_registry):
    assert admin.post(f"/rq/requeue/{QUEUE}").status_code == 403
    assert failed_registry.count == 1


@pytest.mark.parametrize("headers", [SAME_ORIGIN, {"Origin": "http://localhost"},
                                     {"Referer": "http://localhost/rq/0/view/jobs"}])
def test_the_dashboards_own_requeue_button_still_works(admin, failed_registry, headers):
    response = admin.post(f"/rq/requeue/{QUEUE}", headers=headers)
    assert response.status_code == 200 and response.get_json()["count"] == 1
    assert failed_registry.count == 0 and len(Queue(QUEUE, connection=failed_registry.connection)) == 1


def test_its_pages_open_from_the_address_bar_and_from_each_other(admin):
    assert admin.get("/rq/", headers={"Sec-Fetch-Site": "none"}).status_code == 200
    assert admin.get("/rq/0/data/queues.json", headers={"Referer": "http://localhost/rq/"}).status_code == 200


def test_compact_on_an_empty_queue_answers_a_message_not_a_500(admin):
    response = admin.post(f"/rq/queue/{QUEUE}/compact", headers=SAME_ORIGIN)
    assert response.status_code == 200
    assert response.get_json() == {"status": "OK", "message": f"The queue {QUEUE} is empty: there is nothing "
                                                              "to compact."}


def test_compact_drops_the_ids_of_jobs_that_are_gone(admin, accounts_app):
    queue = Queue(QUEUE, connection=Redis.from_url(accounts_app.config["REDIS_URL"]))
    kept, gone = queue.enqueue_call("builtins.int", args=("1",)), queue.enqueue_call("builtins.int", args=("2",))
    gone.delete(remove_from_queue=False)
    response = admin.post(f"/rq/queue/{QUEUE}/compact", headers=SAME_ORIGIN)
    assert response.get_json()["message"] == f"Compacted {QUEUE}: 1 jobs wait in it."
    assert queue.job_ids == [kept.id]


@pytest.mark.parametrize("path", ["/rq/job/nope/requeue", "/rq/job/nope/delete"])
def test_actions_on_a_job_that_is_gone_answer_a_message(admin, path):
    response = admin.post(path, headers=SAME_ORIGIN)
    assert response.status_code in (200, 404) and response.get_json()["status"] == "ERROR"


def test_a_job_page_that_is_gone_is_our_404_page_not_a_500(admin):
    response = admin.get("/rq/0/view/job/nope")
    assert response.status_code == 404 and "There is nothing at this address." in response.get_data(as_text=True)


def test_its_pages_load_the_script_that_shows_those_messages(admin):
    page = admin.get("/rq/0/view/jobs").get_data(as_text=True)
    assert 'id="rq-message"' in page and "/static/js/rq-dashboard.js" in page


def test_a_dashboard_instance_that_is_not_configured_is_a_404_not_a_500(admin):
    assert admin.get("/rq/1/view/queues").status_code == 404
    assert admin.get("/rq/2/data/queues.json").status_code == 404


def _get_routes(app):
    """Every GET route of the app, with made-up values for its arguments (dashboard instance 0: the one Redis)."""
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods:
            values = {name: (0 if name == "instance_number" else 1)
                      if isinstance(rule._converters.get(name), IntegerConverter) else "x" for name in rule.arguments}
            yield rule.endpoint, rule.build(values)[1]


def test_unsafe_eval_is_in_the_dashboards_policy_alone(accounts_app, admin):
    routes = list(_get_routes(accounts_app))
    dashboard = [url for endpoint, url in routes if endpoint.startswith("rq_dashboard.")]
    others = [url for endpoint, url in routes if not endpoint.startswith("rq_dashboard.")]
    assert len(dashboard) > 10 and len(others) > 20
    for url in dashboard:
        assert "'unsafe-eval'" in _policy(admin, url), url
    anonymous = accounts_app.test_client()
    for client in (admin, anonymous):
        for url in [*others, "/nowhere", "/api/nowhere"]:
            policy = _policy(client, url)
            assert "unsafe-eval" not in policy and "unsafe-inline" not in policy, url


def _policy(client, url: str) -> str:
    """The Content-Security-Policy of the page at url (after the routing's own redirects)."""
    with client.get(url, follow_redirects=True) as response:
        return response.headers["Content-Security-Policy"]
