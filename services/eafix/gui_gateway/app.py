"""HTTP API of gui-gateway (every route but login needs a role; see security.py):

    POST /api/v1/auth/login                     check credentials (bearer or API key), audited; public
    GET  /api/v1/auth/whoami                    viewer
    POST /api/v1/trading/{pause|resume|stop-all|close-all}   admin, body {"reason"}; audited
    GET  /api/v1/audit                          admin: the operator audit, oldest first, `after`/`limit`
    GET  /api/v1/system/status                  viewer: peers' readiness/version, ticks, streams, risk-off
    <proxy_routes.PROXY_ROUTES>                 the peers' read APIs (and compliance approvals, admin,
                                                audited), the caller's identity forwarded

Answers to the controls follow compliance-monitor's client (trading_control.py):
`{"action", "result": ok|partial|failed, "details", "audit_id", "correlation_id"}`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from eafix.gui_gateway.audit import AuditQuery
from eafix.gui_gateway.controls import Control, EmergencyControls, PeerError
from eafix.gui_gateway.peers import Peers, identity_headers
from eafix.gui_gateway.principals import Principal, Role, source_id
from eafix.gui_gateway.proxy_routes import PROXY_ROUTES, ProxyRoute
from eafix.gui_gateway.security import Authenticator
from eafix.runtime.logging import correlation_id

PASSED_HEADERS = ("content-type", "content-disposition")


class ControlBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="why; written to the audit and the event")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return value.strip()


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str | None = Field(None, min_length=3, max_length=500)


ControlsFor = Callable[[Principal], EmergencyControls]
StatusReader = Callable[[], Awaitable[dict[str, Any]]]


def build_router(auth: Authenticator, controls_for: ControlsFor, peers: Peers, status: StatusReader) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["gateway"])
    viewer, admin = Depends(auth.requires(Role.VIEWER)), Depends(auth.requires(Role.ADMIN))

    @router.post("/auth/login", summary="Check credentials (Authorization: Bearer or an API key); audited")
    async def login(request: Request, body: LoginBody | None = None) -> dict[str, Any]:
        principal = await auth.authenticate(request, Role.VIEWER, body.api_key if body is not None else None)
        await auth.record(request, "login", "ok", principal.name, principal.role_labels, detail={"via": principal.via})
        return {"principal": principal.name, "roles": principal.role_labels.split(","), "via": principal.via}

    @router.get("/auth/whoami", summary="The caller's principal and roles")
    async def whoami(principal: Principal = viewer) -> dict[str, Any]:
        return {"principal": principal.name, "roles": principal.role_labels.split(","), "via": principal.via}

    @router.post("/trading/{action}", summary="Emergency control: pause, resume, stop-all or close-all (admin)")
    async def control(action: Control, body: ControlBody, request: Request,
                      principal: Principal = admin) -> dict[str, Any]:
        # an unknown control is FastAPI's 422 naming the path parameter and the four allowed
        outcome = await controls_for(principal).apply(action, body.reason, source_id(principal))
        record = await auth.record(request, action.value, outcome.result, principal.name, principal.role_labels,
                                   reason=body.reason, detail={"details": outcome.details})
        return {"action": action.value, "result": outcome.result, "details": outcome.details,
                "audit_id": str(record.id), "correlation_id": record.correlation_id}

    @router.get("/audit", summary="The operator audit, oldest first (admin)")
    async def audit(_: Principal = admin, after: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    action: Annotated[str | None, Query(max_length=40)] = None,
                    actor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
        page = await auth.audit.page(AuditQuery(after, limit, action, actor))
        return {"entries": [{"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "roles": r.roles,
                             "action": r.action, "reason": r.reason, "result": r.result,
                             "correlation_id": r.correlation_id, "source": r.source, "detail": r.detail}
                            for r in page.records], "next_after": page.next_after}

    @router.get("/system/status", summary="Peers' readiness and version, ticks, streams, risk-off (viewer)")
    async def system_status(_: Principal = viewer) -> dict[str, Any]:
        return await status()

    for route in PROXY_ROUTES:
        _add_proxy(router, route, peers, auth)
    return router


def _add_proxy(router: APIRouter, route: ProxyRoute, peers: Peers, auth: Authenticator) -> None:
    caller = Depends(auth.requires(route.role))

    async def proxy(request: Request, principal: Principal = caller) -> Response:
        params = [(k, v) for k, v in request.query_params.multi_items() if k in route.params] + list(route.fixed)
        # each path parameter stays one segment of the peer's path: percent-encoded whole, so a `/`, `..` or
        # `?` in it can reach no other route of the peer (nor make an invalid URL)
        path = route.peer_path.format(**{k: quote(str(v), safe="") for k, v in request.path_params.items()})
        headers = identity_headers(principal, correlation_id.get() or "")
        try:
            if route.method == "POST":
                answer = await peers.post(route.peer, path, headers)
            else:
                answer = await peers.get(route.peer, path, params, headers, route.timeout_s)
        except PeerError as exc:
            if route.audit_action:
                await auth.record(request, route.audit_action, "failed", principal.name, principal.role_labels,
                                  detail={"peer": route.peer, "error": str(exc)})
            raise HTTPException(502, f"{exc}") from None
        if route.audit_action:
            await auth.record(request, route.audit_action, "ok" if answer.status_code < 300 else "refused",
                              principal.name, principal.role_labels,
                              detail={"peer": route.peer, "status": answer.status_code, **request.path_params})
        headers = {k: v for k, v in answer.headers.items() if k.lower() in PASSED_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    router.add_api_route(route.path.removeprefix("/api/v1"), proxy, methods=[route.method], summary=route.summary,
                         name=f"proxy:{route.method}:{route.path}", response_class=Response)
