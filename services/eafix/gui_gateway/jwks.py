"""The issuer's signing keys (JWKS), fetched over HTTP and cached (an adapter).

Keys are refreshed when older than `ttl`, and when a token names a `kid` the cache does not hold
(the IdP rotated its keys) — but at most once per `min_refresh` seconds, so tokens with made-up kids
cannot make the gateway hammer the IdP. A failed refresh keeps the keys it had. Without a JWKS URL the
issuer's OpenID discovery document (`<issuer>/.well-known/openid-configuration`) names it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from jwt import InvalidKeyError, PyJWK, PyJWKError

from eafix.gui_gateway.tokens import ASYMMETRIC, AuthError

log = logging.getLogger(__name__)


class JwksCache:
    def __init__(self, client: httpx.AsyncClient, *, issuer: str, jwks_url: str | None = None,
                 ttl: float = 300.0, min_refresh: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._client, self._issuer, self._url = client, issuer.rstrip("/"), jwks_url
        self._ttl, self._min_refresh, self._monotonic = ttl, min_refresh, monotonic
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0  # successful fetches (exported for tests and operators)

    async def key(self, kid: str) -> PyJWK | None:
        now = self._monotonic()
        stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
        unknown = kid not in self._keys
        if stale or unknown:
            async with self._lock:
                now = self._monotonic()
                may_try = self._tried_at is None or now - self._tried_at >= self._min_refresh
                stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
                if (stale or kid not in self._keys) and may_try:
                    await self._refresh(now)
        if not self._keys and self._fetched_at is None:
            raise AuthError(503, "jwks_unavailable", "the identity provider's keys are unavailable; try again")
        return self._keys.get(kid)

    async def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            url = self._url or await self._discover()
            response = await self._client.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("JWKS refresh failed; keeping %d cached key(s)", len(self._keys),
                        extra={"error": f"{type(exc).__name__}: {exc}"})
            return
        self._keys = parse_jwks(document)
        self._fetched_at = now
        self.fetches += 1

    async def _discover(self) -> str:
        response = await self._client.get(f"{self._issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        config = response.json()
        if config.get("issuer", "").rstrip("/") != self._issuer or not isinstance(config.get("jwks_uri"), str):
            raise ValueError("discovery document: issuer mismatch or no jwks_uri")
        self._url = config["jwks_uri"]
        return self._url


def parse_jwks(document: Any) -> dict[str, PyJWK]:
    """kid -> key for the signature keys of algorithms we accept; anything else is skipped."""
    keys: dict[str, PyJWK] = {}
    for jwk in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"] \
                or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("kty") not in ("RSA", "EC"):  # never symmetric ("oct") keys
            continue
        try:
            key = PyJWK(jwk)
        # a malformed key is skipped, not fatal (TypeError: PyJWT looks a non-string `alg` up in a dict)
        except (PyJWKError, InvalidKeyError, ValueError, TypeError):
            continue
        if key.algorithm_name in ASYMMETRIC:
            keys[jwk["kid"]] = key
    return keys
