"""Typed event contracts of the EAFIX bus.

The JSON Schemas in `schemas/events/` are the source of truth (see schemas/events/README.md); the
pydantic models here accept exactly the documents those schemas accept.

    from eafix.contracts import EVENT_TYPES, PriceTick, make_envelope, parse_envelope

    env = make_envelope(tick, producer="data-ingestor", clock_ts=clock.now())
    redis_payload = env.model_dump_json()
    env = parse_envelope(redis_payload)          # -> Envelope with env.data a PriceTick

JSON Schema validation helpers (`validator`, `message_schema`, `format_checker`) live in
`eafix.contracts.schemas` and import jsonschema lazily.
"""

from eafix.contracts.calendar import CalendarEvent, CalendarGate, CalendarSignal
from eafix.contracts.envelope import Envelope, make_envelope, parse_envelope
from eafix.contracts.events import (
    Bar,
    Contract,
    Event,
    ExecutionReport,
    IndicatorValues,
    IndicatorVector,
    OrderIntent,
    PriceTick,
    RiskRejected,
    Signal,
    SignalSuppressed,
    SystemRiskOff,
    TradeClosed,
)
from eafix.contracts.primitives import (
    CloseReason,
    Direction,
    ExecutionStatus,
    RiskRejectReason,
    SuppressionReason,
    Timeframe,
    format_timestamp,
)
from eafix.contracts.registry import EVENT_MODELS, EVENT_TYPES, TOPICS, EventSpec, spec_for

__all__ = [
    "EVENT_MODELS",
    "CalendarEvent",
    "CalendarGate",
    "CalendarSignal",
    "EVENT_TYPES",
    "TOPICS",
    "Bar",
    "CloseReason",
    "Contract",
    "Direction",
    "Envelope",
    "Event",
    "EventSpec",
    "ExecutionReport",
    "ExecutionStatus",
    "IndicatorValues",
    "IndicatorVector",
    "OrderIntent",
    "PriceTick",
    "RiskRejectReason",
    "RiskRejected",
    "Signal",
    "SignalSuppressed",
    "SuppressionReason",
    "SystemRiskOff",
    "Timeframe",
    "TradeClosed",
    "format_timestamp",
    "make_envelope",
    "parse_envelope",
    "spec_for",
]
