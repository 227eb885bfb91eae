"""risk-manager HTTP API: synchronous checks over the same RiskEngine the bus consumer drives.

    POST /api/v1/validate       body: a Signal (the event contract) -> would it pass now? (dry run)
    POST /api/v1/position-size  body: symbol, sl_pips [, risk_percent, multiplier, account_balance]
    GET  /api/v1/portfolio      balance, realized P&L today, open/reserved positions

A refusal is a 200 with `status: "rejected"` and reason codes, never an HTTP error; malformed input
is FastAPI's 422 whose `detail[].loc` names the field. Nothing here changes the portfolio: validate
reserves nothing and records nothing (a signal already decided gets its recorded decision back).

    app = create_app(services.get("risk-manager"), settings)
    app.include_router(build_router(engine))           # or build_router(lambda: stage.engine)

A service that replaces its engine (reloaded from the repository when it takes over from another
replica) passes a zero-argument callable returning the current engine instead of the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_UP, Decimal
from typing import Annotated, Literal
from uuid import uuid4

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from eafix.contracts import Direction, OrderIntent, RiskRejectReason, Signal
from eafix.contracts.primitives import (
    Currency,
    Lots,
    Money,
    Percent,
    Pips,
    PositiveMoney,
    Symbol,
    Timestamp,
)
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.sizing import Sizing

__all__ = ["PositionSizeRequest", "PositionSizeResponse", "ValidateResponse", "build_router"]

_PERCENT_PLACES = Decimal("0.0001")

MultiplierField = Annotated[Decimal, Field(ge=Decimal("0.1"), le=Decimal("3.0"),
                                           description="risk multiplier, 0.1 to 3.0 (decimal string)")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PositionSizeRequest(_Model):
    symbol: Symbol
    sl_pips: Pips
    risk_percent: Percent | None = Field(default=None, description="defaults to the configured risk (2.0)")
    multiplier: MultiplierField | None = Field(default=None, description="defaults to the configured multiplier")
    account_balance: PositiveMoney | None = Field(default=None, description="defaults to the current balance")


class SizingOut(_Model):
    lots: Lots
    effective_risk_percent: Decimal = Field(description="min(risk x multiplier, 3.5), percent")
    actual_risk_percent: Decimal = Field(description="percent of balance `lots` risks at the stop (rounded up to "
                                                     "4 places); above effective_risk_percent only at the minimum lot")
    risk_amount: Money
    pip_value_per_lot: Money
    min_lot_applied: bool
    max_lot_applied: bool


class PositionSizeResponse(_Model):
    status: Literal["approved", "rejected"]
    symbol: Symbol
    sl_pips: Pips
    risk_percent: Percent
    multiplier: Decimal
    account_balance: Money
    account_currency: Currency
    sizing: SizingOut | None
    reasons: list[RiskRejectReason]
    details: str


class OrderPreview(_Model):
    lots: Lots
    sl_pips: Pips
    tp_pips: Pips
    entry_price: Decimal
    risk_percent: Percent
    account_balance: Money
    account_currency: Currency
    client_order_id: str | None = Field(description="set when the signal was already approved")


class ValidateResponse(_Model):
    validation_id: str
    signal_id: str
    status: Literal["approved", "rejected"]
    reasons: list[RiskRejectReason]
    rejection_reason: RiskRejectReason | None = Field(description="first of `reasons`")
    details: str
    warnings: list[str]
    already_processed: bool = Field(description="the signal was decided before; this is that decision")
    order: OrderPreview | None


class PositionOut(_Model):
    client_order_id: str
    signal_id: str | None
    symbol: Symbol
    direction: Direction
    state: str
    lots: Decimal
    filled_lots: Decimal
    sl_pips: Decimal | None
    risk_amount: Decimal
    opened_at: Timestamp


class PortfolioOut(_Model):
    account_id: str
    account_currency: Currency
    balance: Money
    realized_pnl_today: Money
    open_positions: int
    positions: list[PositionOut]
    halted: str | None


def _percent(value: Decimal) -> Decimal:
    return value.quantize(_PERCENT_PLACES, ROUND_UP)


def _sizing_out(sizing: Sizing) -> SizingOut:
    return SizingOut(
        lots=sizing.lots,
        effective_risk_percent=_percent(sizing.effective_risk_percent),
        actual_risk_percent=_percent(sizing.actual_risk_percent),
        risk_amount=sizing.risk_amount,
        pip_value_per_lot=sizing.pip_value_per_lot,
        min_lot_applied=sizing.min_lot_applied,
        max_lot_applied=sizing.max_lot_applied,
    )


def build_router(engine: RiskEngine | Callable[[], RiskEngine], *,
                 new_validation_id: Callable[[], str] | None = None) -> APIRouter:
    """Routes over `engine`, or over whatever engine `engine()` returns at each request.
    `new_validation_id` names each validate answer (default: a uuid4)."""
    current: Callable[[], RiskEngine] = engine if callable(engine) else (lambda: engine)
    make_id = new_validation_id or (lambda: str(uuid4()))
    router = APIRouter(prefix="/api/v1", tags=["risk"])

    @router.post("/validate", response_model=ValidateResponse,
                 summary="Would this signal pass the risk rules now? (dry run; a rejection is a 200)")
    async def validate(signal: Signal) -> ValidateResponse:
        result = current().validate(signal)
        order: OrderPreview | None = None
        if isinstance(result.decision, OrderIntent) and result.approved:
            intent = result.decision
            order = OrderPreview(lots=intent.lots, sl_pips=intent.sl_pips, tp_pips=intent.tp_pips,
                                 entry_price=intent.entry_price, risk_percent=intent.risk_percent,
                                 account_balance=intent.account_balance, account_currency=intent.account_currency,
                                 client_order_id=intent.client_order_id)
        elif result.approved and result.sizing is not None and result.tp_pips is not None:
            order = OrderPreview(lots=result.sizing.lots, sl_pips=signal.sl_pips, tp_pips=result.tp_pips,
                                 entry_price=signal.entry_price,
                                 risk_percent=_percent(result.sizing.actual_risk_percent),
                                 account_balance=result.balance, account_currency=result.account_currency,
                                 client_order_id=None)
        return ValidateResponse(
            validation_id=make_id(),
            signal_id=result.signal_id,
            status="approved" if result.approved else "rejected",
            reasons=list(result.reasons),
            rejection_reason=result.reasons[0] if result.reasons else None,
            details=result.details,
            warnings=list(result.warnings),
            already_processed=result.already_processed,
            order=order,
        )

    @router.post("/position-size", response_model=PositionSizeResponse,
                 summary="Lot size for a stop distance at the configured (or given) risk")
    async def position_size(request: PositionSizeRequest) -> PositionSizeResponse:
        result = current().position_size(request.symbol, request.sl_pips, risk_percent=request.risk_percent,
                                      multiplier=request.multiplier, balance=request.account_balance)
        return PositionSizeResponse(
            status="approved" if result.approved else "rejected",
            symbol=result.symbol,
            sl_pips=result.sl_pips,
            risk_percent=result.risk_percent,
            multiplier=result.multiplier,
            account_balance=result.balance,
            account_currency=result.account_currency,
            sizing=_sizing_out(result.sizing) if result.sizing is not None else None,
            reasons=list(result.reasons),
            details=result.details,
        )

    @router.get("/portfolio", response_model=PortfolioOut, summary="Balance, today's realized P&L, positions")
    async def portfolio() -> PortfolioOut:
        engine = current()
        pf = engine.portfolio
        today = engine.now().date()
        positions = [
            PositionOut(client_order_id=p.client_order_id, signal_id=p.signal_id, symbol=p.symbol,
                        direction=p.direction, state=p.state.value, lots=p.lots, filled_lots=p.filled_lots,
                        sl_pips=p.sl_pips, risk_amount=p.risk_amount, opened_at=p.opened_at)
            for p in pf.positions.values()
        ]
        return PortfolioOut(account_id=engine.account_id, account_currency=pf.currency, balance=pf.balance,
                            realized_pnl_today=pf.daily_pnl(today), open_positions=len(positions),
                            positions=positions, halted=engine.halted)

    return router
