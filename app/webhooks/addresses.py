"""Where a webhook may go: http(s) URLs whose host resolves only to public addresses (no SSRF), pinned per send."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2000
# What the API's document says a webhook URL looks like: every URL it matches gets past parse() (a host's
# addresses are checked only once it is looked up).
URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"
DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(ValueError):
    """A URL a webhook may not be sent to; the message says why, in words for the person who typed it."""


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart, with the addresses its host resolved to (the send connects to the first)."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        """The Host header: the name as typed (an IPv6 literal in brackets), with a port that is not the default."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if DEFAULT_PORTS[self.scheme] == self.port else f"{name}:{self.port}"


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (tests replace this to fake a name)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address: not loopback, private, link-local (metadata) or reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def parse(url: str) -> Target:
    """The URL's parts, without resolving its host; AddressRefused if it is not a usable http(s) URL."""
    if not url or len(url) > MAX_URL_LENGTH or any(ord(c) < 33 for c in url):
        raise AddressRefused(f"Enter an http:// or https:// URL of at most {MAX_URL_LENGTH} characters, no spaces.")
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise AddressRefused("Enter an http:// or https:// URL, such as https://example.com/hooks/images.")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("A webhook URL cannot carry a user name or password; put a secret in its path instead.")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise AddressRefused("The URL's port is not a number from 1 to 65535.") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, ())


def check(url: str, allow_private: bool) -> Target:
    """Parse the URL and resolve its host; AddressRefused if any address is not public (unless allowed)."""
    target = parse(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list(dict.fromkeys(resolve_host(target.host, target.port)))
        except (OSError, UnicodeError):
            raise AddressRefused(f"{target.host} could not be looked up; check the address.") from None
    if not addresses:
        raise AddressRefused(f"{target.host} could not be looked up; check the address.")
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%")[0])):
                where = target.host if literal is not None else f"{target.host} resolves to {address}, which"
                raise AddressRefused(f"{where} is a loopback, private, link-local or metadata address; webhooks go "
                                     "only to public addresses.")
    return Target(target.scheme, target.host, target.port, target.path, tuple(addresses))
