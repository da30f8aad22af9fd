"""Dependencies the routes declare with ``Annotated``: services, settings, the caller.

They are ``async def`` although none of them waits: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from agenthost.errors import ServerStoppingError
from agenthost.services import ServerServices
from agenthost.settings import Settings
from agenthost.stores.base import Owner


def services_of(request: Request) -> ServerServices:
    """The running server's services, for code outside dependency injection."""
    services: ServerServices | None = getattr(request.app.state, "services", None)
    if services is None:
        raise ServerStoppingError("The server is starting; try again in a moment")
    return services


async def get_services(request: Request) -> ServerServices:
    return services_of(request)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_owner(request: Request) -> Owner:
    """Who owns what this request touches: its API key's id (None with auth off)."""
    return _owner(request)


def _owner(request: Request) -> Owner:
    principal = getattr(request.state, "principal", None)
    return principal.key_id if principal is not None else None


async def accepting_work(request: Request) -> None:
    """Refuse new work while the server shuts down."""
    _refuse_while_stopping(request)


def _refuse_while_stopping(request: Request) -> None:
    if getattr(request.app.state, "stopping", False):
        raise ServerStoppingError()


@dataclass(frozen=True, slots=True)
class Work:
    """What a route that starts a reply needs: the services, the settings, the caller."""

    services: ServerServices
    settings: Settings
    owner: Owner


async def accept_work(request: Request) -> Work:
    """``accepting_work``, services, settings and owner in one dependency.

    The routes that start replies are the busiest: each dependency FastAPI solves
    costs a request about as much as a store operation (docs/performance.md).
    """
    _refuse_while_stopping(request)
    return Work(services_of(request), await get_settings(request), _owner(request))


ServicesDep = Annotated[ServerServices, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
OwnerDep = Annotated[Owner, Depends(get_owner)]
AcceptingWork = Depends(accepting_work)
WorkDep = Annotated[Work, Depends(accept_work)]
