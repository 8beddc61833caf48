"""Bearer-key checks for every route: 401 without a valid key, 403 outside the key's scope or knowledge base.

A server on a loopback address with no key ever created is open (one user on their own machine);
once a key exists, or on any other address, every request needs one."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from .errors import APIError
from .keys import ApiKey, KeyStore

_HINT = "send `Authorization: Bearer KEY` (create a key with `kb keys create`)"


@dataclass(frozen=True)
class Caller:
    """Who is asking: a checked key, or None on an open loopback server."""

    key: ApiKey | None

    def need(self, scope: str, kb: str | None = None) -> None:
        """Refuse (403) unless the key allows ``scope`` on knowledge base ``kb``."""
        if self.key is None or self.key.allows(scope, kb):
            return
        if not self.key.allows(scope):
            raise APIError(403, f"key {self.key.id} has scope {self.key.scope!r}; this needs {scope!r}: "
                           f"create a key with `kb keys create --scope {scope}`", code="insufficient_scope")
        raise APIError(403, f"key {self.key.id} is limited to knowledge base {self.key.kb!r}, not {kb!r}",
                       code="wrong_kb")

    def sees(self, kb: str) -> bool:
        """Whether a listing shows knowledge base ``kb`` to this caller."""
        return self.key is None or self.key.kb is None or self.key.kb == kb


def check_request(request: Request, keys: KeyStore, *, always: bool) -> Caller:
    """The caller behind ``request``'s bearer token; ``always``: keys are required even with none created."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not always and not keys.any():
        return Caller(None)
    if not header:
        raise APIError(401, f"missing API key: {_HINT}", code="missing_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(401, f"malformed Authorization header: {_HINT}", code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    key = keys.check(token.strip())
    if key is None:
        raise APIError(401, "invalid or revoked API key: check it, or create a new one with `kb keys create`",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    return Caller(key)
