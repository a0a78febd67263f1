"""Small helpers the test modules share."""

import re

CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_for(client) -> str:
    """A valid CSRF token for this client's session, read from the home page as a browser would."""
    match = CSRF_PATTERN.search(client.get("/").get_data(as_text=True))
    assert match, "home page has no csrf_token field"
    return match.group(1)
