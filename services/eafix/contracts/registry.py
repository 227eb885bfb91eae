"""The event registry: event_type -> (model, schema file, topic).

Schema files are named `<snake_case event type>.v<MAJOR>.schema.json` (schemas/events/README.md);
the file name is derived from the model's EVENT_TYPE and SCHEMA_VERSION, and a test checks that the
file exists and that its `x-event-type`, `x-schema-version` and `x-topic` agree with the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from eafix.contracts.calendar import CALENDAR_MODELS
from eafix.contracts.events import CORE_MODELS, Event

ENVELOPE_SCHEMA_FILE = "envelope.v1.schema.json"
COMMON_SCHEMA_FILE = "common.v1.schema.json"
EVENT_MODELS: tuple[type[Event], ...] = (*CORE_MODELS, *CALENDAR_MODELS)


class EventSpec(NamedTuple):
    model: type[Event]
    schema_file: str
    topic: str


def major_of(version: str) -> int:
    """MAJOR of a "MAJOR.MINOR" version string."""
    return int(version.split(".", 1)[0])


def schema_file_name(event_type: str, version: str) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", event_type).lower()
    return f"{snake}.v{major_of(version)}.schema.json"


EVENT_TYPES: Mapping[str, EventSpec] = MappingProxyType({
    model.EVENT_TYPE: EventSpec(model, schema_file_name(model.EVENT_TYPE, model.SCHEMA_VERSION), model.TOPIC)
    for model in EVENT_MODELS
})

# topic -> event types published on it (one each today; the envelope's event_type tells them apart)
TOPICS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    topic: tuple(et for et, spec in EVENT_TYPES.items() if spec.topic == topic)
    for topic in dict.fromkeys(spec.topic for spec in EVENT_TYPES.values())
})


def spec_for(event: Event | type[Event]) -> EventSpec:
    """The registry entry of an event (instance or class); KeyError if it is not registered."""
    model = event if isinstance(event, type) else type(event)
    spec = EVENT_TYPES[model.EVENT_TYPE]
    if spec.model is not model:
        raise KeyError(f"{model.__name__} is not the registered model of {model.EVENT_TYPE}")
    return spec
