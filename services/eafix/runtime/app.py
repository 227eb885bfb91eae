"""FastAPI app factory: the endpoints every service has (/healthz, /readyz, /metrics).

A service builds its app with `create_app(spec, settings)` and adds its `/api/v1/...` routes.
Start-up and shutdown run in the lifespan, which uvicorn drives (SIGTERM: stop accepting,
finish in-flight requests, run the shutdown half, exit).
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
from eafix.runtime.settings import Settings, redact
from eafix.services import ServiceSpec

log = logging.getLogger(__name__)


def create_app(service: ServiceSpec, settings: Settings) -> FastAPI:
    backends = Backends(settings)
    metrics = HttpMetrics.create(service.name, __version__)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("started", extra={
            "port": settings.port, "version": __version__,
            "redis": redact(settings.redis_url), "postgres": redact(settings.postgres_url),
            "peers": dict(settings.peers),
        })
        try:
            yield
        finally:
            await backends.aclose()
            log.info("stopped")

    app = FastAPI(title=service.name, version=__version__, description=service.role, lifespan=lifespan)
    app.state.service, app.state.settings = service, settings
    app.state.backends, app.state.metrics = backends, metrics
    app.add_middleware(ObserveMiddleware, metrics=metrics, service=service.name)

    @app.get("/healthz", tags=["health"], summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the configured Redis/Postgres answer",
             responses={503: {"description": "A dependency is down; `checks` names it and the error"}})
    async def readyz() -> JSONResponse:
        ready, checks = await backends.readiness()
        body = {"status": "ready" if ready else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus text exposition",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
