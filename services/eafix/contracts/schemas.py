"""Loading `schemas/events/*.schema.json` and validating documents against them with jsonschema.

The schema files live at the repository root, outside the package. They are found in
`$EAFIX_SCHEMA_DIR` when that is set (an image that ships them elsewhere), otherwise at
`<repo>/schemas/events`, resolved from this file's location: that works from a checkout and from an
editable install (`pip install -e .`), which is how the project is installed. The models in
`eafix.contracts.events` need none of this; only JSON Schema validation does.

`jsonschema` is imported lazily: it is a test/CI dependency, and the services' hot path validates
with the pydantic models.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eafix.contracts.primitives import is_rfc3339_datetime
from eafix.contracts.registry import ENVELOPE_SCHEMA_FILE, EVENT_TYPES, major_of

if TYPE_CHECKING:
    from jsonschema import FormatChecker
    from jsonschema.protocols import Validator
    from referencing import Registry

SCHEMA_DIR_ENV = "EAFIX_SCHEMA_DIR"
SCHEMA_BASE_URI = "https://schemas.eafix.invalid/events/"  # never fetched: resolved from the files
MESSAGE_SCHEMA_ID = SCHEMA_BASE_URI + "message.schema.json"


def schema_dir() -> Path:
    override = os.environ.get(SCHEMA_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "schemas" / "events"


@functools.cache
def load_schemas(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """{file name: schema} of every `*.schema.json` in the schema directory."""
    directory = directory or schema_dir()
    files = sorted(directory.glob("*.schema.json"))
    if not files:
        raise FileNotFoundError(f"no *.schema.json in {directory} (set {SCHEMA_DIR_ENV})")
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in files}


def load_schema(file_name: str) -> dict[str, Any]:
    """One schema by file name (a deep copy: callers may modify it)."""
    return copy.deepcopy(load_schemas()[file_name])


@functools.cache
def format_checker() -> FormatChecker:
    """Draft 2020-12's format checker plus `date-time`.

    jsonschema checks `date-time` only when the optional rfc3339-validator package is installed; this
    registers the same RFC 3339 check the models use, so the result never depends on extras.
    """
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checkers["date-time"] = (is_rfc3339_datetime, ())
    return checker


@functools.cache
def schema_registry() -> Registry:
    """A `referencing` registry of every schema file plus the composed message schema."""
    from referencing import Registry, Resource

    resources = [(schema["$id"], Resource.from_contents(schema)) for schema in load_schemas().values()]
    resources.append((MESSAGE_SCHEMA_ID, Resource.from_contents(message_schema())))
    return Registry().with_resources(resources).crawl()


def message_schema() -> dict[str, Any]:
    """The envelope schema bound to EVENT_TYPES: one JSON Schema for a whole bus message.

    `event_type` must be registered, the MAJOR of `schema_version` must be the registered one, and
    `data` must validate against that event's schema file.
    """
    bindings = []
    for event_type, spec in EVENT_TYPES.items():
        major = major_of(spec.model.SCHEMA_VERSION)
        bindings.append({
            "if": {"properties": {"event_type": {"const": event_type}}, "required": ["event_type"]},
            "then": {"properties": {
                "schema_version": {"pattern": rf"^{major}\.(?:0|[1-9][0-9]*)$"},
                "data": {"$ref": spec.schema_file},
            }},
        })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": MESSAGE_SCHEMA_ID,
        "title": "EAFIX bus message",
        "allOf": [
            {"$ref": ENVELOPE_SCHEMA_FILE},
            {"properties": {"event_type": {"enum": sorted(EVENT_TYPES)}}},
            *bindings,
        ],
    }


def validator(target: str) -> Validator:
    """A format-checking Draft 2020-12 validator for a schema file name, an event type, or
    "message" (the envelope bound to its data, see message_schema())."""
    from jsonschema import Draft202012Validator

    if target == "message":
        schema = message_schema()
    elif target in EVENT_TYPES:
        schema = load_schemas()[EVENT_TYPES[target].schema_file]
    else:
        schema = load_schemas()[target]
    return Draft202012Validator(schema, registry=schema_registry(), format_checker=format_checker())


def schema_errors(target: str, document: Any) -> list[str]:
    """Human-readable validation errors of `document` (empty when valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator(target).iter_errors(document)]
