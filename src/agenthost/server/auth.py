"""The caller of each API request: authenticated, counted against requests per minute.

``authorize`` is a dependency of every API route (not of health, readiness,
metrics or the docs). It reads the key from ``Authorization: Bearer`` or
``X-API-Key``, sets ``request.state.principal``, puts the key's prefix (never
the key) in the log context, and counts the request against the caller's
requests-per-minute limit; the ``RateLimit-*`` headers go out with the response.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from agenthost.auth.keys import Principal
from agenthost.errors import PermissionDeniedError
from agenthost.observability import context
from agenthost.server.access import RESPONSE_HEADERS
from agenthost.server.deps import services_of
from agenthost.stores.base import ANY_OWNER, Owner, OwnerFilter


def credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else header  # not a key: refused
    return request.headers.get("x-api-key")


async def authorize(request: Request) -> Principal:
    services = services_of(request)
    client = request.client.host if request.client else "unknown"
    principal = await services.authenticator.authenticate(credential(request), client=client)
    request.state.principal = principal
    if principal.prefix:
        context.key_prefix.set(principal.prefix)
    quota = await services.limiter.hit_request(principal)
    if quota is not None:
        add_response_headers(request, quota.headers(time.time()))
    return principal


def add_response_headers(request: Request, headers: dict[str, str]) -> None:
    """Headers for whatever response this request gets (``AccessMiddleware`` adds them)."""
    request.scope.setdefault("state", {}).setdefault(RESPONSE_HEADERS, {}).update(headers)


def current_principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def owner_of(principal: Principal) -> Owner:
    return principal.key_id


def listing_owner(principal: Principal, everyone: bool) -> OwnerFilter:
    """Whose sessions a listing shows: the caller's, or everyone's for an admin key."""
    if not everyone:
        return principal.key_id
    if not principal.admin:
        raise PermissionDeniedError("Listing every session needs an admin key")
    return ANY_OWNER


PrincipalDep = Annotated[Principal, Depends(authorize)]
