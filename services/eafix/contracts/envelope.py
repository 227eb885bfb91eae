"""The bus envelope: `Envelope`, `make_envelope()` and `parse_envelope()`.

`data` is validated by the model that EVENT_TYPES registers for `event_type`, and the MAJOR of
`schema_version` must be the one that model implements (any MINOR is accepted: a newer minor only
adds optional fields, and an unknown field is refused by the data model anyway). This is the same
rule as the JSON Schema `eafix.contracts.schemas.message_schema()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from pydantic import SerializeAsAny, ValidationInfo, field_validator

from eafix.contracts.events import Contract, Event
from eafix.contracts.primitives import PATTERNS, EventTypeName, Producer, SchemaVersion, Timestamp, Uuid
from eafix.contracts.registry import EVENT_TYPES, major_of, spec_for

_PRODUCER = re.compile(PATTERNS["Producer"])


class Envelope(Contract):
    event_id: Uuid
    event_type: EventTypeName
    schema_version: SchemaVersion
    correlation_id: Uuid
    causation_id: Uuid | None
    ts_event: Timestamp
    ts_init: Timestamp
    producer: Producer
    data: SerializeAsAny[Event]

    @field_validator("event_type")
    @classmethod
    def _known_event_type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {value!r}; known: {', '.join(sorted(EVENT_TYPES))}")
        return value

    @field_validator("schema_version")
    @classmethod
    def _served_major(cls, value: str, info: ValidationInfo) -> str:
        spec = EVENT_TYPES.get(info.data.get("event_type", ""))
        if spec is not None and major_of(value) != major_of(spec.model.SCHEMA_VERSION):
            raise ValueError(f"{spec.model.EVENT_TYPE} is served at major {major_of(spec.model.SCHEMA_VERSION)}, "
                             f"not {value}")
        return value

    @field_validator("data", mode="plain")
    @classmethod
    def _data_by_event_type(cls, value: Any, info: ValidationInfo) -> Event:
        spec = EVENT_TYPES.get(info.data.get("event_type", ""))
        if spec is None:
            raise ValueError("data cannot be validated without a known event_type")
        if isinstance(value, spec.model):
            return value
        if isinstance(value, Event):
            raise ValueError(f"data is a {type(value).__name__}, event_type says {spec.model.EVENT_TYPE}")
        if not isinstance(value, dict):
            raise ValueError("data must be an object")
        return spec.model.model_validate(value)

    @property
    def topic(self) -> str:
        """Stream the envelope belongs on (`eafix.<domain>.<event>`)."""
        return EVENT_TYPES[self.event_type].topic


class Cause(Protocol):
    """The envelope being handled, as far as its consequences need it (an Envelope or an in-process one)."""

    @property
    def event_id(self) -> UUID: ...
    @property
    def correlation_id(self) -> UUID: ...


def make_envelope(
    event: Event,
    producer: str,
    clock_ts: datetime,
    correlation_id: UUID | str | None = None,
    causation: Cause | None = None,
    *,
    event_id: UUID | None = None,
    ts_event: datetime | None = None,
) -> Envelope:
    """Wrap `event` for publishing.

    - `clock_ts` (the injected clock's now) becomes ts_init; ts_event is `ts_event`, else the time the
      payload carries (tick time, bar close, signal bar, trade close), else `clock_ts`.
    - `causation` is the envelope being handled: causation_id = its event_id and the correlation id
      is inherited from it unless `correlation_id` is given. A root event (no causation) correlates
      to itself (correlation_id = event_id) unless `correlation_id` is given.
    - `event_id` defaults to a random uuid4; a backtest may pass deterministic ids.
    """
    spec = spec_for(event)
    eid = event_id if event_id is not None else uuid4()
    if causation is not None:
        causation_id: UUID | None = causation.event_id
        correlation = correlation_id if correlation_id is not None else causation.correlation_id
    else:
        causation_id = None
        correlation = correlation_id if correlation_id is not None else eid
    happened = ts_event if ts_event is not None else (event.event_time() or clock_ts)
    correlation = correlation if isinstance(correlation, UUID) else UUID(correlation)
    if (clock_ts.utcoffset() is not None and happened.utcoffset() is not None and isinstance(producer, str)
            and _PRODUCER.search(producer)):
        # every field is ours or checked just now, `data` a model of its type: no second validation
        return Envelope.trusted({
            "event_id": eid, "event_type": spec.model.EVENT_TYPE, "schema_version": spec.model.SCHEMA_VERSION,
            "correlation_id": correlation, "causation_id": causation_id, "ts_event": _utc(happened),
            "ts_init": _utc(clock_ts), "producer": producer, "data": event})
    return Envelope(  # refuses the naive time or the bad producer
        event_id=eid,
        event_type=spec.model.EVENT_TYPE,
        schema_version=spec.model.SCHEMA_VERSION,
        correlation_id=correlation,
        causation_id=causation_id,
        ts_event=happened,
        ts_init=clock_ts,
        producer=producer,
        data=event,
    )


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is UTC else ts.astimezone(UTC)


def parse_envelope(raw: Mapping[str, Any] | str | bytes) -> Envelope:
    """Validate a message (a decoded JSON object, or the JSON text itself) into a typed Envelope.

    Raises pydantic.ValidationError on anything the JSON Schema would refuse.
    """
    if isinstance(raw, str | bytes | bytearray):
        return Envelope.model_validate_json(raw)
    if isinstance(raw, Mapping) and not isinstance(raw, dict):
        raw = dict(raw)
    return Envelope.model_validate(raw)
