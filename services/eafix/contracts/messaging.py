"""Contract events <-> bus messages.

`Messenger` wraps events in envelopes (contracts.make_envelope) and publishes them on their topics,
keyed by symbol so partitioned topics keep each symbol in order. Received messages decode back to
`Envelope` models.

In-process fast path: on the in-memory bus (backtest, replay) nothing leaves the process, so the
message carries the validated Envelope model itself next to the ids the bus reads; no JSON
encoding or re-validation per hop. Over Redis the message is the envelope's JSON form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID, uuid4

from eafix.contracts import Envelope, make_envelope, parse_envelope
from eafix.contracts.events import Event
from eafix.runtime.bus.base import Bus
from eafix.runtime.clock import Clock

IN_PROCESS = "_envelope"


@dataclass(frozen=True, slots=True)
class LocalEnvelope:
    """The envelope of an in-process message: the same fields as `Envelope`, nothing validated again
    (every field is ours and `data` is a validated model). It never leaves the process."""

    event_id: UUID
    event_type: str
    schema_version: str
    correlation_id: UUID
    causation_id: UUID | None
    ts_event: datetime
    ts_init: datetime
    producer: str
    data: Event

    @property
    def topic(self) -> str:
        return self.data.TOPIC


def decode(message: dict[str, Any]) -> Envelope | LocalEnvelope:
    env = message.get(IN_PROCESS)
    return env if env is not None else parse_envelope(message)


def counter_ids(start: int = 1) -> Callable[[], UUID]:
    """Deterministic event ids for replays: UUIDs from a counter."""
    state = [start]

    def next_id() -> UUID:
        state[0] += 1
        return UUID(int=state[0] - 1)

    return next_id


class Messenger:
    def __init__(self, bus: Bus, producer: str, clock: Clock, *, in_process: bool = False,
                 ids: Callable[[], UUID] | None = None) -> None:
        self.bus, self.producer, self.clock = bus, producer, clock
        self._in_process = in_process
        self._ids = ids

    def envelope(self, event: Event, causation: Envelope | LocalEnvelope | None = None) -> Envelope | LocalEnvelope:
        event_id = self._ids() if self._ids else None
        now = self.clock.now()
        if not self._in_process:
            return make_envelope(event, self.producer, now, causation=causation, event_id=event_id)
        event_id = event_id or uuid4()
        return LocalEnvelope(
            event_id, event.EVENT_TYPE, event.SCHEMA_VERSION,
            causation.correlation_id if causation is not None else event_id,
            causation.event_id if causation is not None else None,
            event.event_time() or now, now, self.producer, event)

    def encode(self, env: Envelope | LocalEnvelope) -> dict[str, Any]:
        if self._in_process:
            # the bus reads these two for logs; the log formatter stringifies them only if it logs
            return {"event_id": env.event_id, "correlation_id": env.correlation_id, IN_PROCESS: env}
        return cast(Envelope, env).model_dump(mode="json")

    def envelopes(self, events: Iterable[Event], causation: Envelope | LocalEnvelope | None = None
                  ) -> list[Envelope | LocalEnvelope]:
        """The envelopes `publish` would send, without sending them (e.g. to store them in an outbox
        first and publish them with `publish_envelopes` once stored)."""
        return [self.envelope(e, causation) for e in events]

    async def publish_envelopes(self, envelopes: Sequence[Envelope | LocalEnvelope]) -> None:
        """Publish envelopes built earlier (by `envelopes`, or read back from an outbox), as they are:
        same event ids, causation and timestamps."""
        if envelopes:
            await self.bus.publish_many([(env.data.TOPIC, self.encode(env), partition_key(env)) for env in envelopes])

    async def publish(self, events: Iterable[Event], causation: Envelope | LocalEnvelope | None = None
                      ) -> list[Envelope | LocalEnvelope]:
        envelopes = self.envelopes(events, causation)
        await self.publish_envelopes(envelopes)
        return envelopes


def partition_key(env: Envelope | LocalEnvelope) -> str | None:
    """The key a message is published under: its symbol, so each symbol stays in order."""
    return getattr(env.data, "symbol", None)


def document(env: Envelope | LocalEnvelope) -> dict[str, Any]:
    """The envelope's JSON form (what goes over Redis), also for an in-process envelope."""
    if isinstance(env, LocalEnvelope):
        env = Envelope.model_validate({name: getattr(env, name) for name in Envelope.model_fields})
    return env.model_dump(mode="json")
