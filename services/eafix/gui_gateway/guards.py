"""Request guards of gui-gateway (ASGI middleware, an adapter): a rate limit per source address
(429 + Retry-After; a WebSocket connect over it is refused, 403 at the handshake), a request body
size limit (413) and security headers on every response.

The source is the TCP peer address: behind the ingress that is the ingress controller (which limits
per client itself, `ingress.rateLimit`), so this limit is a coarse second line; the per-principal
limit (security.py) is the one that follows a caller. Probes and scrapes are never limited."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eafix.gui_gateway.ratelimit import RateLimiter, retry_after

UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


async def _refuse(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class RequestGuards:
    def __init__(self, app: ASGIApp, *, limiter: RateLimiter | None, max_body_bytes: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.app, self.limiter, self.max_body, self.monotonic = app, limiter, max_body_bytes, monotonic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self._limited(scope):
            await receive()  # websocket.connect; a close before accept answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008, "reason": "rate limit exceeded"})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()),
                                      *((k, v) for k, v in SECURITY_HEADERS if k not in present)]
            await send(message)

        wait = self._limited(scope)
        if wait:
            source = (scope.get("client") or ("unknown", 0))[0]
            await _refuse(send_with_headers, 429, f"rate limit of {source} exceeded",
                          [(b"retry-after", retry_after(wait).encode())])
            return
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _refuse(send_with_headers, 413, f"request body over {self.max_body} bytes")
            return
        await self._capped(scope, receive, send_with_headers)

    def _limited(self, scope: Scope) -> float:
        """Seconds to wait before this source may be served again (0: go ahead). WebSocket connects
        count too: each may carry an API key to verify (argon2, deliberately slow)."""
        if self.limiter is None or scope["path"] in UNLIMITED:
            return 0.0
        source = (scope.get("client") or ("unknown", 0))[0]
        return self.limiter.acquire(f"source:{source}", self.monotonic())

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Bodies without Content-Length (chunked) are counted as they arrive; past the limit the client
        gets 413, the app sees a disconnect, and whatever it sends afterwards is dropped."""
        seen, started, refused = 0, False, False

        async def app_send(message: Message) -> None:
            nonlocal started
            if not refused:
                started = started or message["type"] == "http.response.start"
                await send(message)

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    if not started and not refused:
                        await _refuse(send, 413, f"request body over {self.max_body} bytes")
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, app_send)
