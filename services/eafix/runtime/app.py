"""FastAPI app factory: the endpoints every service has (/healthz, /readyz, /metrics).

`create_app(spec, settings, parts)` adds the service's parts (eafix.runtime.service: its
`/api/v1/...` routers, start/stop steps, background tasks such as the bus consumers). Start-up and
shutdown run in the lifespan, which uvicorn drives (SIGTERM: stop accepting, finish in-flight
requests, run the shutdown half: stop consuming, finish and ack the in-flight message, close the
bus and the pool, exit). A start step that fails fails start-up, and the process exits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eafix import __version__
from eafix.runtime.health import Backends
from eafix.runtime.metrics import HttpMetrics, ObserveMiddleware
from eafix.runtime.service import ServiceParts
from eafix.runtime.settings import Settings, redact
from eafix.services import ServiceSpec

log = logging.getLogger(__name__)


def create_app(service: ServiceSpec, settings: Settings, parts: ServiceParts | None = None) -> FastAPI:
    backends = Backends(settings)
    metrics = HttpMetrics.create(service.name, __version__)
    parts = parts if parts is not None else ServiceParts()
    for collector in parts.collectors:
        metrics.registry.register(collector)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("started", extra={
            "port": settings.port, "version": __version__,
            "redis": redact(settings.redis_url), "postgres": redact(settings.postgres_url),
            "peers": dict(settings.peers),
        })
        try:
            try:
                await parts.start()
            except Exception as exc:
                log.error("start-up failed", extra={"error": " ".join(f"{type(exc).__name__}: {exc}".split())})
                raise
            try:
                yield
            finally:
                await parts.stop()
        finally:
            await backends.aclose()
            log.info("stopped")

    app = FastAPI(title=service.name, version=__version__, description=service.role, lifespan=lifespan)
    app.state.service, app.state.settings = service, settings
    app.state.backends, app.state.metrics, app.state.parts = backends, metrics, parts
    for middleware, options in reversed(parts.middleware):  # add_middleware puts the last added outermost
        app.add_middleware(middleware, **options)
    app.add_middleware(ObserveMiddleware, metrics=metrics, service=service.name)

    @app.get("/healthz", tags=["health"], summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the configured Redis/Postgres answer",
             responses={503: {"description": "A dependency is down; `checks` names it and the error"}})
    async def readyz() -> JSONResponse:
        ready, checks = await backends.readiness()
        # the version lets gui-gateway's system status show what each peer runs
        body = {"status": "ready" if ready else "unavailable", "checks": checks, "version": __version__}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus text exposition",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in parts.routers:
        app.include_router(router)
    return app
