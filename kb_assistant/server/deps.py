"""FastAPI dependencies shared by the route modules: the server's state and the checked caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .auth import Caller, check_request
from .state import ServerState


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.kb
    return state


def caller(request: Request) -> Caller:
    """The request's key, checked (401 when missing, wrong or revoked); scopes are checked by each route."""
    state = server_state(request)
    return check_request(request, state.keys, always=state.require_keys)


State = Annotated[ServerState, Depends(server_state)]
Who = Annotated[Caller, Depends(caller)]
