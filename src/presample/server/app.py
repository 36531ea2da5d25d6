"""``create_app(settings)``: the FastAPI application, with no module-level state.

Models load once, in the lifespan, and are closed with it; everything a route
needs hangs off ``app.state.presample`` (``ServerState``). Errors are JSON
objects with a one-line ``detail`` that names the field at fault.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from ..errors import InputError, RunError
from ..tagdb import TagDatabase
from .engine import Engine
from .middleware import AccessLog, ApiKey, BodyLimit, SecurityHeaders
from .settings import ServerSettings
from .state import ServerState

log = logging.getLogger("presample.server")


def static_dir() -> Path:
    return Path(str(resources.files("presample.server") / "static"))


def load_engines(settings: ServerSettings) -> dict[str, Engine]:
    """Load every configured model (in this thread: startup blocks until ready)."""
    engines: dict[str, Engine] = {}
    for spec in settings.models:
        presampler = settings.load_settings(spec).open()
        if presampler.source.name in engines:
            presampler.close()
            continue
        limits = settings.limits
        engines[presampler.source.name] = Engine(
            presampler,
            queue_size=limits.queue_size,
            window_seconds=limits.batch_window_seconds,
            max_merged=limits.max_merged,
        )
    return engines


def _error_line(err: dict) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{'.'.join(loc) or 'request'}: {message}"


# What FastAPI says (as a 400) when it cannot decode a request body.
BODY_PARSE_ERROR = "There was an error parsing the body"


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .sessions import SessionStore

        engines = load_engines(settings)
        state = ServerState(
            settings=settings,
            db=TagDatabase(),
            engines=engines,
            default_model=next(iter(engines)),
            sessions=SessionStore(
                settings.limits.refine_sessions, settings.limits.refine_ttl_seconds
            ),
        )
        for engine in engines.values():
            engine.start()
        app.state.presample = state
        log.info("ready", extra={"event": "ready", "models": list(engines)})
        try:
            yield
        finally:
            for engine in engines.values():
                await engine.stop()
            state.db.close()

    app = FastAPI(
        title="presample",
        version=__version__,
        summary="Text presampling for text-to-image: tags and sentences in, detailed prompts out.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        detail = "; ".join(_error_line(e) for e in exc.errors()) or "invalid request"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
            # FastAPI's own answer to a body that is not JSON text: a documented 422.
            return JSONResponse(
                {"detail": "body: not a JSON document (or not UTF-8 text)"}, status_code=422
            )
        # A dict detail carries a one-line "message" plus structured extras (problems).
        if isinstance(exc.detail, dict):
            body = {"detail": exc.detail.get("message", ""), **exc.detail}
            body.pop("message", None)
        else:
            body = {"detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    # Whatever a route did not answer itself: the one mapping of presample's errors.
    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RunError)
    async def run_error(request: Request, exc: RunError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    from .a1111_api import router as a1111_router
    from .api import router as api_router
    from .canvas_api import router as canvas_router
    from .refine_api import router as refine_router

    app.include_router(api_router)
    app.include_router(canvas_router)
    app.include_router(refine_router)
    app.include_router(a1111_router)

    if settings.serve_page:
        app.mount("/", StaticFiles(directory=static_dir(), html=True), name="page")

    # Outermost first: log everything, add the security headers to every
    # answer, refuse foreign Host headers, then check the key, then the body size.
    app.add_middleware(BodyLimit, limit=settings.limits.max_body_bytes)
    if settings.api_key:
        app.add_middleware(ApiKey, key=settings.api_key)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)
    return app
