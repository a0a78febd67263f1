"""What the test modules share that is not a factory (those are in factories.py): the password, signing in,
the CSRF token, an API token's header, and reading generations back."""

import re

from app.extensions import db
from app.models import Generation

PASSWORD = "correct horse battery"  # every test account's password, unless a test gives it another
CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_for(client, path: str = "/") -> str:
    """A valid CSRF token for this client's session, read from a page's form (the home page's) as a browser would."""
    match = CSRF_PATTERN.search(client.get(path).get_data(as_text=True))
    assert match, f"{path} has no csrf_token field"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD, next_path: str | None = None, expect: int | None = 303):
    """Sign the client in through the form at /login, as a browser would; return the response.

    Fails the test unless the answer has the status `expect` (a 303 when signing in worked; None: any).
    """
    token = csrf_for(client, "/login")
    url = "/login" + (f"?next={next_path}" if next_path else "")
    response = client.post(url, data={"csrf_token": token, "email": email, "password": password})
    assert expect is None or response.status_code == expect, response.get_data(as_text=True)
    return response


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header of an API token."""
    return {"Authorization": f"Bearer {secret}"}


def row(app, generation_id: int) -> Generation | None:
    """One generation as the database holds it now (None if it is gone)."""
    with app.app_context():
        return db.session.get(Generation, generation_id)


def rows(app, ids) -> list[Generation]:
    """These generations as the database holds them now (None for one that is gone), in the order asked."""
    with app.app_context():
        return [db.session.get(Generation, i) for i in ids]
