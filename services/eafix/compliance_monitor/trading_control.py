"""The port through which compliance-monitor acts on trading (gui-gateway's emergency controls), and
its HTTP adapter.

gui-gateway's contract: `POST {base}/api/v1/trading/{pause|resume|stop-all|close-all}` with body
`{"reason": ...}` and header `X-API-Key: <id>.<secret>`; answers
`{"action", "result": "ok"|"partial"|"failed", "details": [...], "audit_id"}`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import httpx


class Control(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP_ALL = "stop-all"
    CLOSE_ALL = "close-all"


@dataclass(frozen=True)
class ControlResult:
    control: Control
    result: str  # ok | partial | failed (failed also when the gateway could not be reached)
    details: list[Any] = field(default_factory=list)
    audit_id: str | None = None


class TradingControl(Protocol):
    async def apply(self, control: Control, reason: str) -> ControlResult: ...


RETRIED_STATUS = frozenset({502, 503, 504})


class GatewayTradingControl:
    """httpx client of gui-gateway: connect/read timeouts, `attempts` tries on connection errors and
    502/503/504 with a doubling pause; any other answer is final. Never raises: an unreachable
    gateway is a `failed` result whose details say why."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0, attempts: int = 3,
                 backoff: float = 0.2, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                         headers={"X-API-Key": api_key})
        self._attempts, self._backoff = attempts, backoff

    async def apply(self, control: Control, reason: str) -> ControlResult:
        path = f"/api/v1/trading/{control.value}"
        problem = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = await self._client.post(path, json={"reason": reason})
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRIED_STATUS:
                problem = f"HTTP {response.status_code}"
                continue
            return self._result(control, response)
        return ControlResult(control, "failed", [f"gateway unreachable after {self._attempts} attempts: {problem}"])

    @staticmethod
    def _result(control: Control, response: httpx.Response) -> ControlResult:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or body.get("result") not in (
                "ok", "partial", "failed"):
            return ControlResult(control, "failed", [f"HTTP {response.status_code}: {response.text[:200]}"])
        return ControlResult(control, body["result"], list(body.get("details") or []), body.get("audit_id"))

    async def aclose(self) -> None:
        await self._client.aclose()
