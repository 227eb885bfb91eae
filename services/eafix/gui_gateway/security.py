"""Authentication and authorization as FastAPI dependencies (an adapter over tokens, jwks and
api_keys): `Authorization: Bearer <OIDC JWT>` or `X-API-Key: <id>.<secret>`.

`authenticator.requires(role)` is the dependency every non-public route carries; it is marked
(`AUTH_MARKER`) so tests/service/test_route_auth.py can find it on each route. Every refusal is
written to the operator audit (action `auth-failure`) and answered 401 (no or bad credentials) or 403
(authenticated, role too low); a principal over its rate limit gets 429 with Retry-After."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request

from eafix.gui_gateway.api_keys import ApiKeys
from eafix.gui_gateway.audit import AuditRecord, OperatorAudit
from eafix.gui_gateway.principals import Principal, Role
from eafix.gui_gateway.ratelimit import RateLimiter, retry_after
from eafix.gui_gateway.tokens import AuthError, KeyLookup, OidcConfig, verify_token
from eafix.runtime.clock import Clock
from eafix.runtime.logging import correlation_id

AUTH_MARKER = "__eafix_auth__"
KEY_CACHE_SECONDS = 60.0  # a verified API key is not re-hashed (argon2, tens of ms) within this time


def source_of(request: Request) -> str:
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

    async def identify(self, request: Request, api_key: str | None = None) -> Principal:
        """The caller, or AuthError(401). `api_key`: one given in a login body."""
        api_key = api_key or request.headers.get("x-api-key")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if api_key:
            return await self._api_key(api_key.strip())
        if scheme.lower() == "bearer" and credentials.strip():
            if self._oidc is None or self._keys is None:
                raise AuthError(401, "oidc_off", "bearer tokens are not accepted: no OIDC issuer configured")
            return await verify_token(credentials.strip(), self._oidc, self._keys)
        raise AuthError(401, "no_credentials", "authentication required: Authorization: Bearer <token> or X-API-Key")

    async def record(self, request: Request, action: str, result: str, actor: str, roles: str = "",
                     reason: str | None = None, detail: dict[str, Any] | None = None) -> AuditRecord:
        return await self.audit.append(AuditRecord(
            at=self._clock.now(), actor=actor, roles=roles, action=action, result=result,
            correlation_id=correlation_id.get() or "", source=source_of(request), reason=reason,
            detail={"method": request.method, "path": request.url.path, **(detail or {})}))

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
