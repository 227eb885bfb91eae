"""signal-generator HTTP API over the SignalEngine the bus consumers drive.

    POST /api/v1/risk-off/reset    explicit release of the risk-off latch (optional body: operator, reason)
    GET  /api/v1/risk-off          latch state
    GET  /api/v1/signals/recent    recent Signals and SignalSuppressed, newest first (bounded, in memory)

    app = create_app(services.get("signal-generator"), settings)
    app.include_router(build_router(engine, on_reset=publish_release))

`on_reset(previous_state, request)` runs after a reset that released an active latch (sync or async);
the wiring uses it to publish SystemRiskOff(active=false, source="operator:<name>") so the other
replicas release too.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from eafix.contracts import Signal
from eafix.contracts.primitives import Symbol, Timestamp
from eafix.signal_generator.domain import RiskOffState, SignalEngine

__all__ = ["ResetRequest", "build_router"]

MAX_RECENT = 500  # largest `limit` of /signals/recent (the engine keeps at most recent_limit items)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResetRequest(_Model):
    operator: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class RiskOffOut(_Model):
    active: bool
    reason: str | None
    source: str | None
    since: Timestamp | None


class ResetResponse(_Model):
    released: bool = Field(description="true if a latched risk-off was released by this call")
    previous: RiskOffOut
    current: RiskOffOut


class RecentItem(_Model):
    event_type: Literal["Signal", "SignalSuppressed"]
    data: dict[str, Any]


class RecentResponse(_Model):
    count: int
    items: list[RecentItem]


def _state(state: RiskOffState | None) -> RiskOffOut:
    if state is None:
        return RiskOffOut(active=False, reason=None, source=None, since=None)
    return RiskOffOut(active=True, reason=state.reason, source=state.source, since=state.since)


OnReset = Callable[[RiskOffState, ResetRequest], Awaitable[None] | None]


def build_router(engine: SignalEngine, *, on_reset: OnReset | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["signals"])

    @router.post("/risk-off/reset", response_model=ResetResponse,
                 summary="Release the risk-off latch (explicit operator reset)")
    async def reset_risk_off(request: ResetRequest | None = None) -> ResetResponse:
        previous = engine.reset_risk_off()
        if previous is not None and on_reset is not None:
            result = on_reset(previous, request or ResetRequest())
            if inspect.isawaitable(result):
                await result
        return ResetResponse(released=previous is not None, previous=_state(previous), current=_state(engine.risk_off))

    @router.get("/risk-off", response_model=RiskOffOut, summary="Risk-off latch state")
    async def risk_off_state() -> RiskOffOut:
        return _state(engine.risk_off)

    @router.get("/signals/recent", response_model=RecentResponse,
                summary="Recent Signals and suppressions, newest first")
    async def recent(
        limit: Annotated[int, Query(ge=1, le=MAX_RECENT)] = 50,
        symbol: Annotated[Symbol | None, Query()] = None,
        kind: Annotated[Literal["all", "signal", "suppressed"], Query()] = "all",
    ) -> RecentResponse:
        items: list[RecentItem] = []
        for event in engine.recent(None, symbol=symbol):
            is_signal = isinstance(event, Signal)
            if (kind == "signal" and not is_signal) or (kind == "suppressed" and is_signal):
                continue
            items.append(RecentItem(event_type=type(event).EVENT_TYPE, data=event.model_dump(mode="json")))
            if len(items) >= limit:
                break
        return RecentResponse(count=len(items), items=items)

    return router
