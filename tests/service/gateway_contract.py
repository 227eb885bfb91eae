"""A small real app implementing gui-gateway's trading-control contract, for compliance-monitor's client
tests that need faults the real gateway does not make on demand (the end-to-end test and
test_gateway_contract.py use the real one): POST /api/v1/trading/{pause,resume,stop-all,close-all}
with `{"reason"}` and `X-API-Key`; it records each accepted call and can answer 503 a given number of
times."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

ACTIONS = ("pause", "resume", "stop-all", "close-all")


class ControlBody(BaseModel):
    reason: str = Field(min_length=1)


@dataclass
class GatewayState:
    api_key: str
    unavailable: int = 0  # answer 503 to this many calls first
    calls: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0


def gateway_app(state: GatewayState) -> FastAPI:
    app = FastAPI()

    @app.post("/api/v1/trading/{action}")
    async def control(action: str, body: ControlBody, x_api_key: str | None = Header(None)) -> JSONResponse:
        if action not in ACTIONS:
            raise HTTPException(404, f"unknown control {action}")
        if x_api_key != state.api_key:
            state.refused += 1
            raise HTTPException(401, "bad API key")
        if state.unavailable > 0:
            state.unavailable -= 1
            return JSONResponse({"detail": "busy"}, status_code=503)
        state.calls.append({"action": action, "reason": body.reason})
        return JSONResponse({"action": action, "result": "ok", "details": [f"{action} applied"],
                             "audit_id": f"A-{len(state.calls)}"})

    return app
