"""Where the server listens, and whether authentication may be off there.

Kept free of Django imports: the settings module reads it before Django is configured.
"""

from __future__ import annotations

import ipaddress

AUTH_MODES = ("required", "off")


def host_of(address: str) -> str:
    """``"127.0.0.1:11434"`` -> ``"127.0.0.1"``; ``"[::1]:80"`` -> ``"::1"``."""
    host, sep, _port = address.rpartition(":")
    return (host if sep else address).strip("[]")


def is_loopback(address: str) -> bool:
    """Whether ``host:port`` only accepts connections from this machine."""
    host = host_of(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A host name other than localhost may resolve to anything: not loopback.
        return False


# Names that always mean this machine (``*.localhost`` too, as browsers resolve it).
LOOPBACK_NAMES = ("localhost", ".localhost", "127.0.0.1", "[::1]")


def default_allowed_hosts(address: str) -> list[str]:
    """The ``Host`` names answered when ``HERD_ALLOWED_HOSTS`` is unset: on a loopback
    ``address``, the loopback names and the address's own host (as Ollama does); elsewhere
    any (``*``): the server is reached by names this one cannot know."""
    if not is_loopback(address):
        return ["*"]
    host = host_of(address)
    return [*LOOPBACK_NAMES, f"[{host}]" if ":" in host else host]


def default_auth_mode(address: str) -> str:
    """Off only on loopback, where nobody else can reach the server."""
    return "off" if is_loopback(address) else "required"


class ExposedWithoutAuth(Exception):
    """Raised when the server would listen beyond loopback with nobody asked for a key."""


def check_exposure(address: str, mode: str, explicit: bool) -> None:
    """Raises ExposedWithoutAuth when listening on ``address`` with auth ``mode`` is unsafe and
    ``HERD_AUTH=off`` was not set on purpose (``explicit``)."""
    if mode == "off" and not explicit and not is_loopback(address):
        raise ExposedWithoutAuth(
            f"refusing to listen on {address} without API keys: set HERD_AUTH=required, "
            "or HERD_AUTH=off to serve without authentication on purpose"
        )
