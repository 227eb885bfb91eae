"""HTTP API of compliance-monitor.

    POST /webhook/alertmanager       Alertmanager webhook v4 (bearer secret or body signature; 401 otherwise)
    GET  /api/v1/compliance/audit    the audit trail, oldest first, `after`/`limit` pagination
    GET  /api/v1/compliance/approvals          decisions waiting for a human
    POST /api/v1/compliance/approvals/{id}     approve one (admin principal forwarded by gui-gateway)
    GET  /api/v1/compliance/policy   the regulation table in force

gui-gateway authenticates operators and forwards the principal as `X-Eafix-Principal` and its roles
as `X-Eafix-Roles` (comma-separated); the mesh admits only gui-gateway to these routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from eafix.compliance_monitor.alerts import PayloadError, parse_notification
from eafix.compliance_monitor.monitor import ApprovalError, ComplianceMonitor
from eafix.compliance_monitor.webhook_auth import check

PREFIX = "/api/v1/compliance"


def _principal(x_eafix_principal: Annotated[str | None, Header()] = None,
               x_eafix_roles: Annotated[str | None, Header()] = None) -> tuple[str, set[str]]:
    if not x_eafix_principal:
        raise HTTPException(401, "missing X-Eafix-Principal (call through gui-gateway)")
    return x_eafix_principal, {r.strip() for r in (x_eafix_roles or "").split(",") if r.strip()}


def reader(who: Annotated[tuple[str, set[str]], Depends(_principal)]) -> str:
    if not who[1] & {"viewer", "trader", "admin"}:
        raise HTTPException(403, "needs role viewer, trader or admin")
    return who[0]


def admin(who: Annotated[tuple[str, set[str]], Depends(_principal)]) -> str:
    if "admin" not in who[1]:
        raise HTTPException(403, "needs role admin")
    return who[0]


def build_router(monitor: ComplianceMonitor, secret: Callable[[], str | None],
                 rejected: Callable[[str], None]) -> APIRouter:
    router = APIRouter()

    @router.post("/webhook/alertmanager", tags=["compliance"], summary="Alertmanager webhook (v4)")
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        key = secret()
        if key is None:
            return JSONResponse({"detail": "webhook secret not configured"}, status_code=503)
        problem = check(key, request.headers, body)
        if problem is not None:
            rejected(problem.value)
            return JSONResponse({"detail": f"unauthorized: {problem.value}"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            notification = parse_notification(body)
        except PayloadError as exc:
            rejected("malformed_body")
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse({"alerts": await monitor.handle(notification)})

    @router.get(f"{PREFIX}/audit", tags=["compliance"], summary="Audit trail, oldest first")
    async def audit(_: Annotated[str, Depends(reader)], after: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        page = await monitor.audit.page(after, limit)
        return {"entries": [{"id": e.id, "at": e.at.isoformat(), "kind": e.kind, "subject": e.subject,
                             "actor": e.actor, "detail": e.detail} for e in page.entries],
                "next_after": page.next_after}

    @router.get(f"{PREFIX}/approvals", tags=["compliance"], summary="Decisions waiting for approval")
    async def approvals(_: Annotated[str, Depends(reader)]) -> dict[str, Any]:
        return {"pending": monitor.pending()}

    @router.post(f"{PREFIX}/approvals/{{approval_id}}", tags=["compliance"], summary="Approve a decision")
    async def approve(approval_id: int, principal: Annotated[str, Depends(admin)]) -> dict[str, Any]:
        try:
            return await monitor.approve(approval_id, principal)
        except ApprovalError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @router.get(f"{PREFIX}/policy", tags=["compliance"], summary="The regulation table in force")
    async def policy(_: Annotated[str, Depends(reader)]) -> dict[str, Any]:
        return monitor.policy.document.model_dump(mode="json")

    return router
