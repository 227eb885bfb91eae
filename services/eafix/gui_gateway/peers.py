"""HTTP to the peers (an adapter): readiness, the read proxies with the caller's identity forwarded,
and execution-engine's position API for close-all.

The peers trust `X-Eafix-Principal` / `X-Eafix-Roles` only because the flow matrix admits nobody but
gui-gateway to their `/api/v1` routes (NetworkPolicy, Istio AuthorizationPolicy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from eafix.gui_gateway.controls import PeerError
from eafix.gui_gateway.principals import Principal

TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def identity_headers(principal: Principal, correlation_id: str) -> dict[str, str]:
    return {"X-Eafix-Principal": principal.name, "X-Eafix-Roles": principal.role_labels,
            "X-Correlation-ID": correlation_id}


class Peers:
    def __init__(self, urls: Mapping[str, str], transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = dict(urls)
        self._client = httpx.AsyncClient(timeout=TIMEOUT, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, peer: str, path: str) -> str:
        if peer not in self.urls:
            raise PeerError(f"{peer}: no URL configured (SERVICE_{peer.upper().replace('-', '_')}_URL)")
        return self.urls[peer] + path

    async def readiness(self, peer: str) -> dict[str, Any]:
        """{ready, version, checks | error} from the peer's /readyz."""
        try:
            response = await self._client.get(self.url(peer, "/readyz"))
            body = response.json()
        except (httpx.HTTPError, ValueError, PeerError) as exc:
            return {"ready": False, "version": None, "error": f"{type(exc).__name__}: {exc}"}
        return {"ready": response.status_code == 200, "version": body.get("version"), "checks": body.get("checks")}

    async def get(self, peer: str, path: str, params: Any, headers: Mapping[str, str], timeout_s: float | None = None
                  ) -> httpx.Response:
        timeout = TIMEOUT if timeout_s is None else httpx.Timeout(timeout_s, connect=TIMEOUT.connect)
        try:
            return await self._client.get(self.url(peer, path), params=params, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise PeerError(f"{peer}: {type(exc).__name__}: {exc}") from None

    async def post(self, peer: str, path: str, headers: Mapping[str, str]) -> httpx.Response:
        try:
            return await self._client.post(self.url(peer, path), headers=headers)
        except httpx.HTTPError as exc:
            raise PeerError(f"{peer}: {type(exc).__name__}: {exc}") from None


class ExecutionPositions:
    """PositionsPort over execution-engine: GET /api/v1/positions, POST /api/v1/positions/{id}/close."""

    def __init__(self, peers: Peers, headers: Mapping[str, str]) -> None:
        self._peers, self._headers = peers, headers

    async def open_positions(self) -> list[str]:
        response = await self._peers.get("execution-engine", "/api/v1/positions", {"status": "OPEN"}, self._headers)
        if response.status_code != 200:
            raise PeerError(f"execution-engine: HTTP {response.status_code}: {response.text[:200]}")
        return [p["position_id"] for p in response.json()]

    async def close(self, position_id: str) -> str:
        response = await self._peers.post("execution-engine", f"/api/v1/positions/{position_id}/close", self._headers)
        if response.status_code == 200:
            return "closed"
        if response.status_code == 202:
            return "close-requested"
        if response.status_code == 409:
            return "already closed"
        raise PeerError(f"HTTP {response.status_code}: {response.text[:200]}")
