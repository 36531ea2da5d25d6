"""ASGI middleware: body size limit, API key, and one log line per request.

Written as plain ASGI callables (not Starlette's ``BaseHTTPMiddleware``) so a
large body is refused while it streams in, before it is held in memory.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("presample.server")


async def _send_json(send: Send, status: int, body: dict[str, Any], headers=()) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


# Sent with every answer: the page may not be framed by another site
# (clickjacking), browsers may not guess content types, and no page address
# leaks to other sites. The page loads only its own scripts and styles.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
)


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every HTTP response (where not already set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # FastAPI's /api/docs page loads Swagger UI from a CDN: no policy there.
        docs = scope.get("path", "").startswith("/api/docs")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (k, v)
                    for k, v in SECURITY_HEADERS
                    if k not in present and not (docs and k == b"content-security-policy")
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """413 for request bodies over ``limit`` bytes, by header or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = {"detail": f"request body larger than {self.limit} bytes"}
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"detail": "invalid Content-Length"})
                    return
                if declared > self.limit:
                    await _send_json(send, 413, message)
                    return
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused, started
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > self.limit:
                    # Answer now; the app only sees the client leave. (Raising here
                    # would be caught by FastAPI's body parsing and become a 400.)
                    if not started:
                        started = refused = True
                        await _send_json(send, 413, message)
                    return {"type": "http.disconnect"}
            return incoming

        async def tracking_send(outgoing: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app says now is moot
            if outgoing["type"] == "http.response.start":
                started = True
            await send(outgoing)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not refused:
                raise


class ApiKey:
    """Every ``/api/`` path needs the key; the page, its files and ``/health`` do not.

    The page itself holds no data: it asks for the key and sends it with each call.
    """

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"x-api-key":
                given = value
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not secrets.compare_digest(given, self.key):
            await _send_json(
                send,
                401,
                {"detail": "missing or wrong API key: send it in the X-API-Key header"},
                headers=[(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)


class AccessLog:
    """One structured line per request: method, path, status, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def tracking_send(outgoing: Message) -> None:
            nonlocal status
            if outgoing["type"] == "http.response.start":
                status = outgoing["status"]
            await send(outgoing)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "event": "request",
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status or 500,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "client": client[0] if client else None,
                },
            )
