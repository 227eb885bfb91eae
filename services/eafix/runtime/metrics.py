"""Prometheus metrics of one app, and the ASGI middleware that records HTTP requests.

Each app owns its CollectorRegistry (not the process-global one), so several apps can live in
one process (tests, the embedded mode) without "Duplicated timeseries" errors.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eafix.runtime.logging import correlation_id

UNMATCHED = "<unmatched>"  # route label of 404s: raw paths would explode label cardinality
CORRELATION_HEADER = b"x-correlation-id"


@dataclass(frozen=True)
class HttpMetrics:
    registry: CollectorRegistry
    requests: Counter
    duration: Histogram

    @classmethod
    def create(cls, service: str, version: str) -> HttpMetrics:
        registry = CollectorRegistry(auto_describe=True)
        build = Gauge("eafix_build_info", "Build of the running service (always 1).",
                      ["service", "version"], registry=registry)
        build.labels(service, version).set(1)
        return cls(
            registry=registry,
            requests=Counter("eafix_http_requests_total", "HTTP requests served.",
                             ["service", "method", "route", "status"], registry=registry),
            duration=Histogram("eafix_http_request_duration_seconds", "HTTP request latency.",
                               ["service", "method", "route"], registry=registry),
        )


def _route_template(scope: Scope) -> str:
    # Starlette's router stores the matched route in the scope it was handed (ours).
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    app = scope.get("app")
    return _matching_template(getattr(getattr(app, "router", None), "routes", ()), scope) or UNMATCHED


def _matching_template(routes: Any, scope: Scope) -> str | None:
    """The template of the route matching `scope` when a middleware answered before routing (a 429).
    FastAPI >= 0.165 keeps included routers as branches whose effective routes hold the templates."""
    for candidate in routes:
        branch = getattr(candidate, "effective_candidates", None)
        if branch is not None:
            found = _matching_template(branch(), scope)
            if found:
                return found
            continue
        route = getattr(candidate, "original_route", candidate)
        if hasattr(candidate, "path") and route.matches(scope)[0] is Match.FULL:
            return str(candidate.path)
    return None


def _correlation_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == CORRELATION_HEADER:
            text = value.decode("latin-1")
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return uuid.uuid4().hex


class ObserveMiddleware:
    """Per request: a correlation id (taken from X-Correlation-ID or new, echoed back) and the
    request counter/histogram labelled with the route template, not the raw path."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, service: str) -> None:
        self.app, self.metrics, self.service = app, metrics, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = _correlation_id(scope)
        token = correlation_id.set(cid)
        status = 500  # what the client gets if the app raises before responding
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                header = (CORRELATION_HEADER, cid.encode("latin-1"))
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route, method = _route_template(scope), scope["method"]
            self.metrics.requests.labels(self.service, method, route, str(status)).inc()
            self.metrics.duration.labels(self.service, method, route).observe(elapsed)
            correlation_id.reset(token)
