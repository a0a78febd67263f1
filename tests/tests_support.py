"""Small helpers the test modules share."""

import re

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
