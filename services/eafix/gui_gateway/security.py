"""Authentication and authorization as FastAPI dependencies (an adapter over tokens, jwks and
api_keys): `Authorization: Bearer <OIDC JWT>` or `X-API-Key: <id>.<secret>`.

`authenticator.requires(role)` is the dependency every non-public route carries; it is marked
(`AUTH_MARKER`) so tests/service/test_route_auth.py can find it on each route. Every refusal is
written to the operator audit (action `auth-failure`) and answered 401 (no or bad credentials) or 403
(authenticated, role too low); a principal over its rate limit gets 429 with Retry-After."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request, WebSocket, WebSocketDisconnect, WebSocketException
from starlette.requests import HTTPConnection
from starlette.status import WS_1008_POLICY_VIOLATION

from eafix.gui_gateway.api_keys import ApiKeys
from eafix.gui_gateway.audit import AuditRecord, OperatorAudit
from eafix.gui_gateway.principals import Principal, Role
from eafix.gui_gateway.ratelimit import RateLimiter, retry_after
from eafix.gui_gateway.tokens import AuthError, KeyLookup, OidcConfig, verify_token
from eafix.runtime.clock import Clock
from eafix.runtime.logging import correlation_id

AUTH_MARKER = "__eafix_auth__"
WS_AUTH_SECONDS = 10.0  # a WebSocket that has not authenticated by then is closed
WS_AUTH_FORM = 'first message must be {"type": "auth", "api_key"|"token": ...}'
KEY_CACHE_SECONDS = 60.0  # a verified API key is not re-hashed (argon2, tens of ms) within this time


def source_of(request: HTTPConnection) -> str:
    return request.client.host if request.client else "unknown"


class Authenticator:
    def __init__(self, *, oidc: OidcConfig | None, keys: KeyLookup | None, api_keys: ApiKeys,
                 audit: OperatorAudit, clock: Clock, limiter: RateLimiter | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._oidc, self._keys, self._api_keys = oidc, keys, api_keys
        self.audit, self._clock, self._limiter, self._monotonic = audit, clock, limiter, monotonic
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def _api_key(self, presented: str) -> Principal:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > self._monotonic():
            return cached[0]
        principal = await asyncio.to_thread(self._api_keys.verify, presented)
        if principal is None:
            raise AuthError(401, "bad_api_key", "unknown or wrong API key")
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[digest] = (principal, self._monotonic() + KEY_CACHE_SECONDS)
        return principal

    async def identify(self, request: HTTPConnection, api_key: str | None = None) -> Principal:
        """The caller, or AuthError(401). `api_key`: one given in a login body."""
        return await self.identify_credentials(api_key or request.headers.get("x-api-key"),
                                               request.headers.get("authorization", ""))

    async def identify_credentials(self, api_key: str | None, authorization: str) -> Principal:
        scheme, _, credentials = authorization.partition(" ")
        if api_key:
            return await self._api_key(api_key.strip())
        if scheme.lower() == "bearer" and credentials.strip():
            if self._oidc is None or self._keys is None:
                raise AuthError(401, "oidc_off", "bearer tokens are not accepted: no OIDC issuer configured")
            return await verify_token(credentials.strip(), self._oidc, self._keys)
        raise AuthError(401, "no_credentials", "authentication required: Authorization: Bearer <token> or X-API-Key")

    async def record(self, request: HTTPConnection, action: str, result: str, actor: str, roles: str = "",
                     reason: str | None = None, detail: dict[str, Any] | None = None) -> AuditRecord:
        return await self.audit.append(AuditRecord(
            at=self._clock.now(), actor=actor, roles=roles, action=action, result=result,
            correlation_id=correlation_id.get() or "", source=source_of(request), reason=reason,
            detail={"method": request.scope.get("method", "WEBSOCKET"), "path": request.url.path, **(detail or {})}))

    async def authenticate(self, request: Request, needed: Role, api_key: str | None = None) -> Principal:
        principal: Principal | None = None
        try:
            principal = await self.identify(request, api_key)
            if not principal.may(needed):
                has = principal.role_labels or "none"
                raise AuthError(403, "role_too_low", f"needs role {needed.label} (has: {has})")
        except AuthError as exc:
            actor = principal.name if principal is not None else "anonymous"
            roles = principal.role_labels if principal is not None else ""
            await self.record(request, "auth-failure", "refused", actor, roles, detail={"why": exc.reason})
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else None
            raise HTTPException(exc.status, exc.detail, headers=headers) from None
        if self._limiter is not None:
            wait = self._limiter.acquire(f"principal:{principal.name}", self._monotonic())
            if wait:
                raise HTTPException(429, f"rate limit of {principal.name} exceeded",
                                    headers={"Retry-After": retry_after(wait)})
        request.state.principal = principal
        return principal

    def requires(self, role: Role) -> Callable[[Request], Awaitable[Principal]]:
        async def dependency(request: Request) -> Principal:
            return await self.authenticate(request, role)

        setattr(dependency, AUTH_MARKER, role)
        dependency.__name__ = f"requires_{role.label}"
        return dependency

    def requires_websocket(self, role: Role) -> Callable[[WebSocket], Awaitable[Principal]]:
        """The WebSocket form of `requires`: credentials in the handshake's headers (X-API-Key or
        Authorization: Bearer, for scripts), else in the first message, which a browser sends since it
        cannot set headers: `{"type": "auth", "api_key": ...}` or `{"type": "auth", "token": <JWT>}`
        within WS_AUTH_SECONDS. Not in the URL: query strings end up in access logs. A refusal is
        audited and closes the socket with 1008 (policy violation)."""

        async def dependency(websocket: WebSocket) -> Principal:
            principal: Principal | None = None
            await websocket.accept()
            try:
                api_key, authorization = websocket.headers.get("x-api-key"), websocket.headers.get("authorization", "")
                if not api_key and not authorization:
                    api_key, authorization = await _first_message_credentials(websocket)
                principal = await self.identify_credentials(api_key, authorization)
                if not principal.may(role):
                    raise AuthError(403, "role_too_low", f"needs role {role.label} (has: {principal.role_labels})")
            except AuthError as exc:
                actor = principal.name if principal is not None else "anonymous"
                await self.record(websocket, "auth-failure", "refused", actor,
                                  principal.role_labels if principal is not None else "", detail={"why": exc.reason})
                raise WebSocketException(WS_1008_POLICY_VIOLATION, exc.detail[:120]) from None
            return principal

        setattr(dependency, AUTH_MARKER, role)
        dependency.__name__ = f"requires_{role.label}_websocket"
        return dependency


async def _first_message_credentials(websocket: WebSocket) -> tuple[str | None, str]:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), WS_AUTH_SECONDS)
        message = json.loads(text)
    except TimeoutError:
        raise AuthError(401, "no_credentials", f"no auth message within {WS_AUTH_SECONDS:g} s") from None
    except (ValueError, KeyError, WebSocketDisconnect):
        raise AuthError(401, "no_credentials", WS_AUTH_FORM) from None
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise AuthError(401, "no_credentials", WS_AUTH_FORM)
    api_key, token = message.get("api_key"), message.get("token")
    return (api_key if isinstance(api_key, str) else None), (f"Bearer {token}" if isinstance(token, str) else "")
