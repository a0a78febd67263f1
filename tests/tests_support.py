"""Small helpers the test modules share."""

import re

import sqlalchemy as sa

from app.accounts.users import local_user, require_user
from app.extensions import db
from app.generations.lifecycle import create_batch
from app.models import Generation

CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_for(client, path: str = "/") -> str:
    """A valid CSRF token for this client's session, read from a page (the home page) as a browser would."""
    match = CSRF_PATTERN.search(client.get(path).get_data(as_text=True))
    assert match, f"{path} has no csrf_token field"
    return match.group(1)


def sign_in(client, email: str, password: str, next_path: str | None = None):
    """Sign in through the form, as a browser would; return the response."""
    token = csrf_for(client, "/login")
    url = "/login" + (f"?next={next_path}" if next_path else "")
    return client.post(url, data={"csrf_token": token, "email": email, "password": password})


PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_PATTERN.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


def make_user(app, email: str, admin: bool = False, monthly_credits: float | None = None):
    """An account with PASSWORD; returns its id."""
    from app.accounts.users import create_user

    with app.app_context():
        return create_user(email, password=PASSWORD, is_admin=admin, monthly_credits=monthly_credits).id


def signed_in(client, email: str) -> str:
    """Sign the client in through the form; returns a CSRF token of its session."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    return token


def make_token(app, email: str, name: str = "script", expires_days: int | None = None) -> str:
    """A new API token's secret for the account with this email."""
    from app.accounts.tokens import create_token
    from app.accounts.users import require_user

    with app.app_context():
        return create_token(require_user(email), name, expires_days).secret


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {secret}"}


def make_batch(app, *prompts: str, owner_email: str | None = None) -> tuple[int, list[int]]:
    """Create a batch of these prompts (the local user's, or owner_email's); its id and its generations' ids."""
    with app.test_request_context():
        owner = require_user(owner_email) if owner_email else local_user()
        batch = create_batch(owner, list(prompts))
        return batch.id, [g.id for g in batch.generations]


def set_status(app, generation_id: int, status: str, **values) -> None:
    """Put a row straight into a status, as a test's starting point (not through the lifecycle)."""
    with app.app_context():
        db.session.execute(sa.update(Generation).where(Generation.id == generation_id)
                           .values(status=status, **values))
        db.session.commit()
