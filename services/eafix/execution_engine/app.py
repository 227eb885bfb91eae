"""HTTP side of execution-engine. Every engine call goes through the process's `ExecutionGateway`
(gateway.py), which the bus stage shares, so both use its lock and its outbox.

Routes (`build_router`):
- `GET /api/v1/orders?status=&symbol=&limit=` newest first (limit 1..1000, default 100);
- `GET /api/v1/positions?status=OPEN|CLOSED&symbol=` (default: open positions);
- `POST /api/v1/positions/{position_id}/close`: 200 with the closed position and its trade, 202 when
  the broker answers later (MT4: the close is requested), 404 unknown id, 409 already closed,
  503 when the broker cannot close now (e.g. no price yet).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from eafix.contracts.events import TradeClosed
from eafix.contracts.primitives import PATTERNS, CloseReason, ExecutionStatus, format_timestamp
from eafix.execution_engine.domain import (
    ExecutionError,
    Order,
    Position,
    PositionClosedError,
    PositionStatus,
    Trade,
    UnknownPositionError,
)
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.repository import MAX_LIMIT

# --- JSON shapes ---------------------------------------------------------------------------------------------

def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_timestamp(value)
    if hasattr(value, "value"):  # StrEnum
        return value.value
    return value


class OrderOut(BaseModel):
    client_order_id: str
    idempotency_key: str
    signal_id: str
    symbol: str
    direction: str
    lots: str
    sl_pips: str
    tp_pips: str
    entry_price: str
    account_currency: str
    status: str
    broker_order_id: str | None
    filled_lots: str
    avg_price: str | None
    commission: str
    reason: str | None
    created_at: str
    updated_at: str
    submitted_at: str | None
    version: int

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(**{name: _text(getattr(order, name)) for name in cls.model_fields})


class PositionOut(BaseModel):
    position_id: str
    client_order_id: str
    symbol: str
    direction: str
    lots: str
    open_price: str
    sl_price: str
    tp_price: str
    open_time: str
    commission: str
    account_currency: str
    status: str
    broker_order_id: str | None
    close_requested_at: str | None
    close_price: str | None
    close_time: str | None
    close_reason: str | None
    pips: str | None
    pnl: str | None

    @classmethod
    def of(cls, position: Position) -> PositionOut:
        return cls(**{name: _text(getattr(position, name)) for name in cls.model_fields})


class CloseOut(BaseModel):
    status: str  # CLOSED | CLOSE_REQUESTED
    position: PositionOut
    trade: dict[str, Any] | None  # the TradeClosed event (wire form)


def trade_out(trade: Trade | TradeClosed) -> dict[str, Any]:
    event = trade.to_event() if isinstance(trade, Trade) else trade
    return event.model_dump(mode="json")


# --- routes ---------------------------------------------------------------------------------------------------

SymbolQuery = Annotated[str | None, Query(pattern=PATTERNS["Symbol"], description="e.g. EURUSD")]
IdPath = Annotated[str, Path(pattern=PATTERNS["Id"])]


def build_router(gateway: ExecutionGateway) -> APIRouter:
    """The execution-engine API over the process's gateway (shared with the bus stage)."""
    repo = gateway.repo
    router = APIRouter(prefix="/api/v1", tags=["execution"])

    @router.get("/orders", response_model=list[OrderOut], summary="Orders, newest first")
    async def list_orders(status: ExecutionStatus | None = None, symbol: SymbolQuery = None,
                          limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> list[OrderOut]:
        orders = await repo.list_orders(status=status, symbol=symbol, limit=limit)
        return [OrderOut.of(o) for o in orders]

    @router.get("/positions", response_model=list[PositionOut], summary="Positions (open by default)")
    async def list_positions(status: PositionStatus = PositionStatus.OPEN,
                             symbol: SymbolQuery = None) -> list[PositionOut]:
        positions = await repo.list_positions(status=status, symbol=symbol)
        return [PositionOut.of(p) for p in positions]

    @router.post(
        "/positions/{position_id}/close", response_model=CloseOut, summary="Close a position at market (MANUAL)",
        responses={202: {"model": CloseOut, "description": "Close requested; the broker answers later"},
                   404: {"description": "No such position"}, 409: {"description": "Already closed"},
                   503: {"description": "The broker cannot close it now"}},
    )
    async def close_position(position_id: IdPath) -> JSONResponse:
        try:
            result = await gateway.close_position(position_id, CloseReason.MANUAL)
        except UnknownPositionError:
            raise HTTPException(404, f"no position {position_id}") from None
        except PositionClosedError as exc:
            raise HTTPException(409, str(exc)) from None
        except ExecutionError as exc:
            raise HTTPException(503, str(exc)) from None
        body = CloseOut(status="CLOSED" if result.trade is not None else "CLOSE_REQUESTED",
                        position=PositionOut.of(result.position),
                        trade=trade_out(result.trade) if result.trade is not None else None)
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if result.trade is not None else 202)

    return router


__all__ = ["OrderOut", "PositionOut", "build_router"]
