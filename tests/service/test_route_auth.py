"""Every route of every service's app (all ten, built by the runtime's app builder as a pod builds them)
is accounted for:

- public: only /healthz, /readyz, /metrics (cluster-internal), FastAPI's OpenAPI document and docs,
  and gui-gateway's login and web UI files (the page holds no data; the API behind it is authenticated);
- gui-gateway: every other route carries the authentication dependency (security.AUTH_MARKER) and
  answers 401 without credentials (the live feed /ws: closes with 1008);
- the other services: their `/api/v1` routes are INTERNAL: they trust the identity gui-gateway forwards
  and are protected by the network. So in every profile of the chart, the flow matrix may let reach
  them only the release's own services named in it (gui-gateway, and the pipeline hops), the helm-test
  pod on /readyz, Prometheus on /metrics and the callers of a self-authenticated route on that route;
  no ingress, no other actor. A self-authenticated route (compliance-monitor's Alertmanager webhook,
  which checks a shared secret itself) is listed with its reason and must refuse an anonymous call.
docs/security.md ("Route exposure") states the same decision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from eafix import services
from eafix.gui_gateway.proxy_routes import PROXY_ROUTES
from eafix.gui_gateway.security import AUTH_MARKER
from eafix.platform.policy.flow_matrix import declared
from eafix.platform.profiles import profiles
from eafix.platform.render import render
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class
from service.asgi import client_for, served

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
          ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}
GATEWAY_PUBLIC = {("POST", "/api/v1/auth/login"), ("GET", "/"), ("GET", "/ui/"), ("GET", "/ui/{asset}")}
WEBSOCKETS = {"/ws"}
SELF_AUTHENTICATED = {
    ("compliance-monitor", "POST", "/webhook/alertmanager"):
        "Alertmanager's shared secret (Authorization: Bearer, or an HMAC signature), checked in the handler",
}
INTERNAL_PREFIX = "/api/v1/"
GATEWAY = "gui-gateway"


def app_of(name: str, **settings: Any):
    spec = services.BY_NAME[name]
    values = settings_class(spec).defaults(spec) if not settings else settings_class(spec)(name=name, **settings)
    return create_app(spec, values, build_parts(spec, values))


def walk(routes: Any) -> Iterator[Any]:
    """The app's routes; FastAPI >= 0.165 keeps included routers as branches of effective routes (whose
    WebSocket entries carry no path: the route they stand for does)."""
    from starlette.routing import WebSocketRoute

    for route in routes:
        branch = getattr(route, "effective_candidates", None)
        if branch is not None:
            yield from walk(branch())
        elif isinstance(getattr(route, "original_route", None), WebSocketRoute):
            yield route.original_route
        else:
            yield route


def endpoints(app) -> list[tuple[str, str, Any]]:
    """(method, path, dependant) of every route; HEAD, which Starlette adds to GET routes, is left out."""
    return [(m, r.path, getattr(r, "dependant", None)) for r in walk(app.routes)
            for m in sorted(getattr(r, "methods", None) or {"GET"}) if m != "HEAD"]


def authenticated(dependant: Any) -> bool:
    return dependant is not None and any(
        getattr(d.call, AUTH_MARKER, None) is not None or authenticated(d) for d in dependant.dependencies)


def classify(service: str) -> dict[tuple[str, str], str]:
    out = {}
    for method, path, dependant in endpoints(app_of(service)):
        key = (method, path)
        if key in PUBLIC or (service == GATEWAY and key in GATEWAY_PUBLIC):
            out[key] = "public"
        elif service == GATEWAY:
            out[key] = "authenticated" if authenticated(dependant) else "UNPROTECTED"
        elif (service, method, path) in SELF_AUTHENTICATED:
            out[key] = "self-authenticated"
        else:
            out[key] = "internal" if path.startswith(INTERNAL_PREFIX) else "UNPROTECTED"
    return out


CLASSES = {name: classify(name) for name in services.NAMES}


@pytest.mark.parametrize("service", services.NAMES)
def test_every_route_is_public_authenticated_or_internal(service):
    routes = CLASSES[service]
    assert ("GET", "/healthz") in routes and ("GET", "/readyz") in routes  # the enumeration is real
    unprotected = sorted(k for k, v in routes.items() if v == "UNPROTECTED")
    assert not unprotected, f"{service}: routes without authentication that are on no list: {unprotected}"
    if service == GATEWAY:
        assert "internal" not in routes.values()
        assert sum(v == "authenticated" for v in routes.values()) >= 20  # the API and the proxies


def test_the_route_enumeration_sees_a_route_without_its_dependency():
    from fastapi import APIRouter, FastAPI

    app, router = FastAPI(), APIRouter(prefix="/api/v1")
    router.add_api_route("/forgotten", lambda: {}, methods=["POST"])
    app.include_router(router)
    [(method, path, dependant)] = [e for e in endpoints(app) if e[1] == "/api/v1/forgotten"]
    assert (method, path) == ("POST", "/api/v1/forgotten") and not authenticated(dependant)


@pytest.fixture(scope="module")
def gateway_routes() -> list[tuple[str, str]]:
    return sorted(k for k, v in CLASSES[GATEWAY].items() if v == "authenticated")


@pytest.mark.anyio
async def test_every_authenticated_gateway_route_refuses_an_anonymous_call(gateway_routes):
    async with client_for(app_of(GATEWAY)) as client:
        for method, path in gateway_routes:
            if path in WEBSOCKETS:
                continue  # below: not an HTTP route
            url = (path.replace("{action}", "pause").replace("{symbol}", "EURUSD").replace("{trade_id}", "T-1")
                   .replace("{approval_id}", "1"))
            answer = await client.request(method, url, json={"reason": "probe"} if method == "POST" else None)
            assert answer.status_code == 401, (method, path, answer.status_code, answer.text)


@pytest.mark.anyio
async def test_the_live_feed_refuses_an_anonymous_connection(gateway_routes):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    assert {("GET", p) for p in WEBSOCKETS} <= set(gateway_routes)
    with served(app_of(GATEWAY)) as base:
        async with connect(base.replace("http://", "ws://") + "/ws") as ws:
            await ws.send('{"type": "subscribe", "channels": ["ticks"]}')
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.anyio
async def test_self_authenticated_routes_refuse_an_anonymous_call():
    for (service, method, path) in SELF_AUTHENTICATED:
        async with client_for(app_of(service, alertmanager_webhook_secret="s3cret")) as client:
            answer = await client.request(method, path, json={})
        assert answer.status_code == 401, (service, path)


# --- the network side: who the flow matrix lets reach the internal routes ------------------------------

RELEASE = set(services.NAMES)


def outside_callers(rows, service: str) -> list[str]:
    """Rows into `service` from anything that is not a caller the internal routes may have."""
    bad = []
    for row in rows:
        if row.dst != service or row.port != services.BY_NAME[service].port:
            continue  # another service, or the sidecar's telemetry ports (not the app)
        if row.src in RELEASE:
            continue  # a peer named in the matrix (gui-gateway, the pipeline hops)
        if row.src == "helm-test" and row.paths == ("/readyz",) and row.methods == ("GET",):
            continue
        if row.src == "prometheus" and row.paths == ("/metrics",) and row.methods == ("GET",):
            continue
        if row.src == "alertmanager" and row.methods and row.paths and all(
                (service, m, p) in SELF_AUTHENTICATED for m in row.methods for p in row.paths):
            continue
        bad.append(f"{row.src} -> {row.dst} {row.methods or 'any method'} {row.paths or 'any path'}")
    return bad


PROFILES = profiles("eafix-trading")


@pytest.fixture(scope="module", params=[p.id for p in PROFILES])
def matrix(request):
    profile = next(p for p in PROFILES if p.id == request.param)
    return declared(render(profile.chart_dir, profile.values_files).objects)


def test_internal_routes_are_reachable_only_from_matrix_peers(matrix):
    enabled = {r.dst for r in matrix.rows} & RELEASE
    internal = {s for s in enabled if "internal" in CLASSES[s].values()}
    assert internal and any(r.src in RELEASE and r.dst in internal for r in matrix.rows)  # the check is real
    problems = {s: outside_callers(matrix.rows, s) for s in internal}
    assert not {s: p for s, p in problems.items() if p}


def test_an_ingress_route_to_an_internal_service_would_be_caught(matrix):
    from dataclasses import replace

    row = next(r for r in matrix.rows if r.src in RELEASE and r.dst in RELEASE - {GATEWAY})
    exposed = replace(row, src="istio-ingressgateway", methods=(), paths=("/api/v1/x",))
    assert outside_callers([*matrix.rows, exposed], row.dst) == [
        f"istio-ingressgateway -> {row.dst} any method ('/api/v1/x',)"]


def test_every_gateway_proxy_reaches_a_route_its_peer_has():
    # a peer route renamed or removed would leave the gateway answering the peer's 404 forever
    routes = {name: {(m, p) for m, p, _ in endpoints(app_of(name))} for name in {r.peer for r in PROXY_ROUTES}}
    missing = [(r.path, r.peer, r.method, r.peer_path) for r in PROXY_ROUTES
               if (r.method, r.peer_path) not in routes[r.peer]]
    assert not missing
