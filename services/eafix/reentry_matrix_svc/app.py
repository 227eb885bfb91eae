"""reentry-matrix-svc HTTP API.

    POST /api/v1/reentry/decide        what-if: the decision a trade closing now would get (the matrix,
                                       its ladder tier, today's ledger); nothing is recorded
    GET  /api/v1/reentry/chains/{id}   the decisions of a chain, by the id of any of its trades
    GET  /api/v1/reentry/matrix        the matrix in force (version, families, fallback)

Malformed input is FastAPI's 422 naming the field; an unknown chain is a 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from eafix.contracts.primitives import DirectionField, Lots, Pips, Price, SignedPips, Symbol, Timestamp
from eafix.reentry_matrix_svc.engine import ClosedTrade, Origin, ReentryEngine, Verdict
from eafix.reentry_matrix_svc.matrix import Generation, Proximity
from eafix.reentry_matrix_svc.wire import decision_event

__all__ = ["DecideRequest", "build_router"]


class DecideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: Symbol
    strategy: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="signal family of the trade")
    generation: Literal["O", "R1", "R2"] = "O"
    direction: DirectionField
    lots: Lots
    close_price: Price
    pips: SignedPips = Field(description="result of the trade in pips (signed)")
    sl_pips: Pips | None = Field(default=None, description="the trade's stop; without it outcomes use the pip "
                                                           "fallback")
    open_time: Timestamp
    close_time: Timestamp
    proximity: Literal["IM", "SH", "LG", "EX", "CD", "NONE"] | None = Field(
        default=None, description="calendar proximity to assume; default: what the service knows now")

    @model_validator(mode="after")
    def _ordered(self) -> DecideRequest:
        if self.close_time < self.open_time:
            raise ValueError("close_time is before open_time")
        return self


def _decision(verdict: Verdict) -> dict[str, Any]:
    return decision_event(verdict).model_dump(mode="json")


def build_router(engine: Callable[[], ReentryEngine],
                 chain: Callable[[str], Awaitable[list[Verdict]]]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/reentry", tags=["reentry"])

    @router.post("/decide")
    async def decide(request: DecideRequest) -> dict[str, Any]:
        trade = ClosedTrade(trade_id="WHAT-IF", client_order_id="WHAT-IF", symbol=request.symbol,
                            direction=request.direction, lots=request.lots, close_price=request.close_price,
                            open_time=request.open_time, close_time=request.close_time, pips=request.pips)
        origin = Origin("WHAT-IF", request.strategy, "H1", 0.5, Generation(request.generation))
        prox = None if request.proximity is None else Proximity(request.proximity)
        verdict = engine().what_if(trade, origin, request.sl_pips, prox)
        return _decision(verdict)

    @router.get("/chains/{trade_id}")
    async def chain_of(trade_id: str) -> dict[str, Any]:
        verdicts = await chain(trade_id)
        if not verdicts:
            raise HTTPException(404, f"no re-entry chain has a trade {trade_id!r}")
        return {"original_trade_id": verdicts[0].original_trade_id, "decisions": [_decision(v) for v in verdicts],
                "length": 1 + sum(1 for v in verdicts if v.approved)}

    @router.get("/matrix")
    async def matrix() -> dict[str, Any]:
        return engine().matrix.model_dump(mode="json")

    return router
