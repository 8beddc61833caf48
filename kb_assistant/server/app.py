"""The app factory and ``serve``: a FastAPI app over one settings object, models loaded once per process."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import KBError
from ..generators import Generator
from ..settings import Settings
from .errors import error_response, install_error_handlers
from .jobs import Jobs
from .keys import KeyStore
from .state import ServerState


class BodyLimit:
    """413 for a request body over the limit: uploads get ``max_upload_mb``, everything else
    ``max_body_kb``; checked on Content-Length and again on the bytes actually received."""

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"].endswith("/documents")
        limit = self.upload_limit if upload else self.json_limit
        what = "an upload (server.max_upload_mb)" if upload else "a request (server.max_body_kb)"
        message = f"the request body is over the limit of {limit} bytes for {what}: send less"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            response = error_response(413, message, code="body_too_large")
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413, message)
            return msg

        await self.app(scope, counted, send)


def create_app(settings: Settings, *, require_keys: bool = False, generator: Generator | None = None) -> FastAPI:
    """The API over ``settings``' data directory. ``require_keys``: every request needs a key even when none
    exists yet (a non-loopback address). ``generator``: an already loaded answer model (else loaded on first use)."""
    from . import kb_routes, openai_routes

    app = FastAPI(title="kb-assistant", version="1", docs_url=None,
                  description="OpenAI-compatible chat and embeddings over your knowledge bases, and a REST API "
                  "to manage them. Authenticate with `Authorization: Bearer KEY` (`kb keys create`).")
    app.state.kb = ServerState(settings, require_keys=require_keys, generator=generator)
    app.state.jobs = Jobs()
    install_error_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(kb_routes.router)
    app.add_middleware(BodyLimit, json_limit=settings.server.max_body_kb << 10,  # type: ignore[arg-type]
                       upload_limit=settings.server.max_upload_mb << 20)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    _offline_docs(app)
    return app


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the scripts shipped in the ``swagger-ui-bundle`` package: FastAPI's
    default page fetches them from a CDN, which a machine without internet cannot reach."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="kb-assistant API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_listen(settings: Settings, host: str) -> bool:
    """Whether keys are required; refuses a non-loopback address while no key exists."""
    if is_loopback(host):
        return False
    if not KeyStore(settings.data_dir).any():
        raise KBError(f"refusing to listen on {host}, reachable from other machines, while no API key exists: "
                      "create one with `kb keys create --scope admin`, or serve on 127.0.0.1")
    return True


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the API with uvicorn until interrupted."""
    import uvicorn

    require = check_listen(settings, host)
    app = create_app(settings, require_keys=require)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        app.state.kb.close()
