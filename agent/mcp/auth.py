"""Who may use the HTTP transport: one bearer token, and loopback unless told otherwise.

The token is checked by the ``mcp`` SDK's own bearer middleware
(:class:`StaticToken` is its ``TokenVerifier``); a request without it, or
with another, gets ``401`` before any tool runs.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class StaticToken:
    """Accepts exactly one token, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode(), self._token):
            return None
        return AccessToken(token=token, client_id="deskhand-bearer", scopes=[])


def bearer_settings(url: str) -> AuthSettings:
    """Auth settings for a resource server whose tokens this server issues itself."""
    return AuthSettings(issuer_url=url, resource_server_url=None)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
