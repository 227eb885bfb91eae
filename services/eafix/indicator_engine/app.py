"""HTTP adapter of the indicator-engine: `GET /api/v1/indicators/{symbol}`.

The router only reads the engine; the bus worker (wired elsewhere) feeds it ticks/bars and
publishes the vectors it returns.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from eafix.contracts.primitives import Timeframe
from eafix.indicator_engine.domain import IndicatorEngine

__all__ = ["build_router"]


def build_router(engine: IndicatorEngine) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["indicators"])

    @router.get(
        "/indicators/{symbol}",
        summary="Latest IndicatorVector of a symbol, per timeframe",
        description="The vector of the last closed bar of each timeframe (or of `timeframe`). Values are null "
                    "while an indicator warms up. 404 when the symbol (or that timeframe) has no closed bar yet.",
        responses={404: {"description": "No closed bar yet for this symbol/timeframe"}},
    )
    async def indicators(
        symbol: Annotated[str, Path(min_length=6, max_length=6, description="e.g. EURUSD (case-insensitive)")],
        timeframe: Annotated[Timeframe | None, Query(description="Only this timeframe")] = None,
    ) -> dict[str, Any]:
        name = symbol.upper()
        latest = engine.latest(name)
        if timeframe is not None:
            latest = {tf: v for tf, v in latest.items() if tf == timeframe}
        if not latest:
            what = f"{name} {timeframe.value}" if timeframe is not None else name
            raise HTTPException(404, f"no closed bar yet for {what}")
        order = {tf: i for i, tf in enumerate(Timeframe)}
        return {
            "symbol": name,
            "timeframes": {tf.value: v.model_dump(mode="json") for tf, v in sorted(latest.items(),
                                                                                   key=lambda kv: order[kv[0]])},
        }

    return router
