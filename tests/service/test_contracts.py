"""Event contracts: the JSON Schemas in schemas/events/ and the pydantic models in eafix.contracts accept
exactly the same documents.

- every schema's `examples` are accepted and its `x-counterexamples` refused by BOTH jsonschema
  (Draft 2020-12, format checking on) and the model, in Python mode (a decoded dict) and JSON mode;
- the same for every shared definition of common.v1.schema.json against its Python type;
- property-style: seeded random mutations of the examples (values swapped between documents, tricky
  values, keys dropped or added, at any depth) get the same verdict from both sides, and whatever is
  accepted survives model -> model_dump(mode="json") -> schema -> model unchanged;
- the registry, the file conventions and the envelope helpers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError

from eafix.contracts import (
    EVENT_TYPES,
    TOPICS,
    Direction,
    Envelope,
    ExecutionReport,
    OrderIntent,
    PriceTick,
    Signal,
    SystemRiskOff,
    make_envelope,
    parse_envelope,
)
from eafix.contracts.primitives import DEFS, PATTERNS
from eafix.contracts.registry import COMMON_SCHEMA_FILE, ENVELOPE_SCHEMA_FILE, schema_file_name
from eafix.contracts.schemas import (
    SCHEMA_BASE_URI,
    format_checker,
    load_schemas,
    message_schema,
    schema_dir,
    schema_registry,
)

SCHEMAS = load_schemas()
EVENT_FILES = {spec.schema_file: event_type for event_type, spec in EVENT_TYPES.items()}
DOCUMENT_FILES = sorted([*EVENT_FILES, ENVELOPE_SCHEMA_FILE])  # schemas of whole documents
COMMON = SCHEMAS[COMMON_SCHEMA_FILE]
DESIGN_TOPICS = {
    "eafix.price.tick", "eafix.price.bars", "eafix.indicators.computed", "eafix.signals.generated",
    "eafix.signals.suppressed", "eafix.orders.validated", "eafix.risk.rejected", "eafix.execution.reports",
    "eafix.trades.closed", "eafix.system.risk_off", "eafix.reentry.decisions", "eafix.calendar.events",
    "eafix.calendar.signals",
}

_VALIDATORS: dict[str, Any] = {}


def schema_validator(file_name: str):
    """Draft 2020-12 validator with format checking; the envelope is checked bound to its data."""
    if file_name not in _VALIDATORS:
        schema = message_schema() if file_name == ENVELOPE_SCHEMA_FILE else SCHEMAS[file_name]
        _VALIDATORS[file_name] = Draft202012Validator(schema, registry=schema_registry(),
                                                      format_checker=format_checker())
    return _VALIDATORS[file_name]


def def_validator(name: str):
    key = f"def:{name}"
    if key not in _VALIDATORS:
        schema = {"$ref": f"{SCHEMA_BASE_URI}{COMMON_SCHEMA_FILE}#/$defs/{name}"}
        _VALIDATORS[key] = Draft202012Validator(schema, registry=schema_registry(), format_checker=format_checker())
    return _VALIDATORS[key]


def model_parse(file_name: str, document: Any, *, json_mode: bool = False):
    """Validate with the pydantic side: the event model, or parse_envelope for the envelope."""
    if file_name == ENVELOPE_SCHEMA_FILE:
        return parse_envelope(json.dumps(document)) if json_mode else Envelope.model_validate(document)
    model = EVENT_TYPES[EVENT_FILES[file_name]].model
    return model.model_validate_json(json.dumps(document)) if json_mode else model.model_validate(document)


def verdicts(file_name: str, document: Any) -> tuple[bool, bool, bool, Any]:
    """(schema accepts, model accepts a dict, model accepts JSON text, the parsed model or None)."""
    schema_ok = schema_validator(file_name).is_valid(document)
    parsed = None
    with contextlib.suppress(ValidationError):
        parsed = model_parse(file_name, copy.deepcopy(document))
    try:
        model_parse(file_name, document, json_mode=True)
        json_ok = True
    except ValidationError:
        json_ok = False
    return schema_ok, parsed is not None, json_ok, parsed


def _cases(kind: str) -> list:
    return [pytest.param(name, i, id=f"{name.split('.')[0]}-{i}")
            for name in DOCUMENT_FILES for i in range(len(SCHEMAS[name].get(kind, [])))]


# --- schema files ------------------------------------------------------------------------------------


def test_schema_dir_holds_every_registered_file():
    assert schema_dir().is_dir()
    expected = {*EVENT_FILES, ENVELOPE_SCHEMA_FILE, COMMON_SCHEMA_FILE}
    assert set(SCHEMAS) == expected


@pytest.mark.parametrize("file_name", sorted(SCHEMAS))
def test_schema_is_valid_draft_2020_12_with_versioned_id(file_name):
    schema = SCHEMAS[file_name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_BASE_URI + file_name
    major = re.fullmatch(r"[a-z_]+\.v(\d+)\.schema\.json", file_name).group(1)
    assert re.fullmatch(PATTERNS["SchemaVersion"], schema["x-schema-version"])
    assert schema["x-schema-version"].split(".")[0] == major


def test_message_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(message_schema())


@pytest.mark.parametrize("file_name", DOCUMENT_FILES)
def test_document_schema_has_enough_examples_and_counterexamples(file_name):
    schema = SCHEMAS[file_name]
    assert len(schema["examples"]) >= 2
    assert len(schema["x-counterexamples"]) >= 3
    for entry in schema["x-counterexamples"]:
        assert set(entry) == {"why", "document"} and entry["why"].strip()


def _objects(node: Any, path: str = ""):
    """Every subschema that declares `properties`, with its path."""
    if isinstance(node, dict):
        if "properties" in node:
            yield path or "<root>", node
        for key, value in node.items():
            if key not in ("examples", "x-counterexamples", "enum", "const"):
                yield from _objects(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{path}[{i}]")


@pytest.mark.parametrize("file_name", DOCUMENT_FILES)
def test_objects_are_closed_fully_required_and_described(file_name):
    for path, obj in _objects({k: v for k, v in SCHEMAS[file_name].items() if k != "allOf"}):
        assert obj.get("additionalProperties") is False, f"{path}: additionalProperties must be false"
        # the one exception: a property a MINOR version added (`x-since`), which old producers omit
        added = {name for name, prop in obj["properties"].items() if "x-since" in prop}
        assert set(obj.get("required", [])) == set(obj["properties"]) - added, f"{path}: all properties are required"
        for name, prop in obj["properties"].items():
            assert prop.get("description"), f"{path}.{name}: needs a description (units)"
        version = SCHEMAS[file_name].get("x-schema-version", "1.0")
        for name in added:
            since = obj["properties"][name]["x-since"]
            assert since.split(".")[0] == version.split(".")[0] and since.endswith(tuple("123456789")), \
                f"{path}.{name}: x-since {since} must be a minor of {version}"
            assert {"type": "null"} in obj["properties"][name].get("anyOf", []), f"{path}.{name}: must be nullable"


def test_a_property_added_in_a_minor_is_left_out_while_none():
    # a 1.0 consumer (closed objects) still reads a 1.1 signal that is not a re-entry
    doc = SCHEMAS["signal.v1.schema.json"]["examples"][0]
    assert "reentry" not in doc
    assert Signal.model_validate(doc).model_dump(mode="json") == doc
    with_link = SCHEMAS["signal.v1.schema.json"]["examples"][2]
    assert Signal.model_validate(with_link).model_dump(mode="json")["reentry"]["max_lots"] == "1.20"


def test_common_definitions_are_documented():
    for name, definition in COMMON["$defs"].items():
        assert definition.get("description"), name
        assert len(definition.get("examples", [])) >= 2, name
        assert len(definition.get("x-counterexamples", [])) >= 3, name


def test_common_patterns_are_the_python_patterns():
    for name, definition in COMMON["$defs"].items():
        if "pattern" in definition:
            assert PATTERNS[name] == definition["pattern"], name
    assert set(DEFS) == set(COMMON["$defs"])


def test_decimals_are_strings_on_the_wire():
    decimal_defs = {"Price", "Lots", "LotsOrZero", "Pips", "SignedPips", "Money", "MoneyOrZero",
                    "PositiveMoney", "Percent"}
    for name in decimal_defs:
        assert COMMON["$defs"][name]["type"] == "string"
        assert not def_validator(name).is_valid(1)
        with pytest.raises(ValidationError):
            TypeAdapter(DEFS[name]).validate_python(1.5)


# --- registry -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_registry_agrees_with_the_schema_file(event_type):
    model, schema_file, topic = EVENT_TYPES[event_type]
    schema = SCHEMAS[schema_file]
    assert schema_file == schema_file_name(event_type, model.SCHEMA_VERSION)
    assert schema["x-event-type"] == event_type == schema["title"] == model.EVENT_TYPE
    assert schema["x-schema-version"] == model.SCHEMA_VERSION
    assert schema["x-topic"] == topic == model.TOPIC
    assert set(model.model_fields) == set(schema["properties"])
    assert model.model_config["frozen"] is True and model.model_config["extra"] == "forbid"


def test_topics_follow_the_naming_scheme():
    assert set(TOPICS) == DESIGN_TOPICS
    for topic, event_types in TOPICS.items():
        assert re.fullmatch(r"eafix\.[a-z]+\.[a-z_]+", topic)
        assert [EVENT_TYPES[et].topic for et in event_types] == [topic] * len(event_types)
    assert sorted(et for types in TOPICS.values() for et in types) == sorted(EVENT_TYPES)


def test_every_issue_event_type_is_registered():
    assert set(EVENT_TYPES) == {
        "PriceTick", "Bar", "IndicatorVector", "Signal", "SignalSuppressed", "OrderIntent", "RiskRejected",
        "ExecutionReport", "TradeClosed", "SystemRiskOff", "ReentryDecision", "CalendarEvent", "CalendarSignal",
    }


# --- examples and counter-examples: both validators -------------------------------------------------------


@pytest.mark.parametrize(("file_name", "index"), _cases("examples"))
def test_example_is_accepted_by_schema_and_model(file_name, index):
    document = SCHEMAS[file_name]["examples"][index]
    errors = [e.message for e in schema_validator(file_name).iter_errors(document)]
    assert errors == []
    parsed = model_parse(file_name, copy.deepcopy(document))
    assert model_parse(file_name, document, json_mode=True) == parsed
    # canonical examples survive the round trip character for character (decimals, timestamps)
    dumped = parsed.model_dump(mode="json")
    assert dumped == document
    assert json.loads(parsed.model_dump_json()) == document


@pytest.mark.parametrize(("file_name", "index"), _cases("x-counterexamples"))
def test_counterexample_is_refused_by_schema_and_model(file_name, index):
    entry = SCHEMAS[file_name]["x-counterexamples"][index]
    document = entry["document"]
    assert not schema_validator(file_name).is_valid(document), entry["why"]
    with pytest.raises(ValidationError):
        model_parse(file_name, copy.deepcopy(document))
    with pytest.raises(ValidationError):
        model_parse(file_name, document, json_mode=True)


@pytest.mark.parametrize("name", sorted(DEFS))
def test_common_definition_examples_agree(name):
    definition = COMMON["$defs"][name]
    adapter = TypeAdapter(DEFS[name])
    for value in definition["examples"]:
        assert def_validator(name).is_valid(value), value
        parsed = adapter.validate_python(value)
        assert adapter.validate_json(json.dumps(value)) == parsed
        dumped = adapter.dump_python(parsed, mode="json")
        assert def_validator(name).is_valid(dumped) and adapter.validate_python(dumped) == parsed
    for entry in definition["x-counterexamples"]:
        assert not def_validator(name).is_valid(entry["value"]), entry["why"]
        with pytest.raises(ValidationError):
            adapter.validate_python(entry["value"])
        with pytest.raises(ValidationError):
            adapter.validate_json(json.dumps(entry["value"]))


# --- property-style: random mutations get the same verdict from both sides --------------------------------

TRICKY = [
    None, True, False, 0, 1, -1, 2, 0.5, 1.0, 1.2, -0.1, 3.0, 150, 1e300, "", " ", "x", "1", "0", "-0", "1.10",
    "1.0", "0.00", "-1.5", "1e3", "01.5", "1.", ".5", "12.25", "1.123456789", "100", "100.0", "100.5",
    "EURUSD", "eurusd", "XAUUSD", "EURUSD\n", "1.5\n", "EUR", "usd", "LONG", "SHORT", "BUY", "long", "M1", "M30",
    "H4", "TP", "RISK_OFF", "FILLED", "REJECTED", "PARTIAL", "PriceTick", "Signal", "Heartbeat", "1.0", "2.0",
    "1.7", "2025-01-06T12:00:00Z", "2025-01-06T12:00:00.5Z", "2025-02-30T12:00:00Z", "2024-02-29T00:00:00Z",
    "2025-01-06T12:00:00+00:00", "2025-01-06T12:00:60Z", "2025-01-06T12:00:00.1234567Z",
    "5f0c2b8e-6a1d-4c3e-9b7a-1d2e3f4a5b6c", "5F0C2B8E-6A1D-4C3E-9B7A-1D2E3F4A5B6C",
    "5f0c2b8e6a1d4c3e9b7a1d2e3f4a5b6c", "a" * 64, "a" * 65, "x" * 500, "x" * 501, "data-ingestor", "Data",
    "ema_20", "w1", [], ["SPREAD_TOO_WIDE"], ["SPREAD_TOO_WIDE", "SAFETY_FAIL"], ["SAFETY_FAIL", "SAFETY_FAIL"],
    "SAFETY_FAIL", {}, {"EUR": 1}, {"ema_20": 1.5}, {"EUR": "1"}, [1], {"a": None},
]
MUTATIONS_PER_SCHEMA = 250


def _leaves(node: Any, path: tuple = ()):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))


def _set(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return document


def _mutate(rng: random.Random, document: Any, donors: list[Any]) -> Any:
    doc = copy.deepcopy(document)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = [p for p, _ in _leaves(doc)]
        path = rng.choice(paths)
        target = doc
        for key in path:
            target = target[key]
        op = rng.random()
        if op < 0.35:  # a value found at the same place in another document (often valid)
            donor_values = [v for d in donors for p, v in _leaves(d) if p == path]
            if donor_values:
                doc = _set(doc, path, copy.deepcopy(rng.choice(donor_values)))
        elif op < 0.55:  # any value from any example (right type, wrong place)
            values = [v for d in donors for _, v in _leaves(d)]
            doc = _set(doc, path, copy.deepcopy(rng.choice(values)))
        elif op < 0.8:
            doc = _set(doc, path, copy.deepcopy(rng.choice(TRICKY)))
        elif isinstance(target, dict) and target and op < 0.9:
            del target[rng.choice(sorted(target))]
        elif isinstance(target, dict):
            target[rng.choice(["extra", "EUR", "ema_20", "rsi_14", "usd", "data", "reason"])] = rng.choice(TRICKY)
        elif isinstance(target, list):
            target.append(rng.choice(TRICKY))
    return doc


@pytest.mark.parametrize("file_name", DOCUMENT_FILES)
def test_random_mutations_get_the_same_verdict(file_name):
    rng = random.Random(f"eafix-contracts-{file_name}")  # seeded: reproducible in CI
    examples = SCHEMAS[file_name]["examples"]
    donors = [*examples, *(e["document"] for e in SCHEMAS[file_name]["x-counterexamples"])]
    accepted = refused = 0
    for _ in range(MUTATIONS_PER_SCHEMA):
        document = _mutate(rng, rng.choice(examples), donors)
        schema_ok, model_ok, json_ok, parsed = verdicts(file_name, document)
        assert schema_ok == model_ok == json_ok, (
            f"disagreement (schema={schema_ok}, model={model_ok}, json={json_ok}) on {json.dumps(document)}")
        if not schema_ok:
            refused += 1
            continue
        accepted += 1
        dumped = parsed.model_dump(mode="json")
        assert schema_validator(file_name).is_valid(dumped), json.dumps(dumped)
        assert model_parse(file_name, dumped) == parsed
    # the generator must exercise both sides of the boundary
    assert accepted >= 10 and refused >= 10, (accepted, refused)


@pytest.mark.parametrize("name", sorted(DEFS))
def test_common_definitions_agree_on_tricky_values(name):
    adapter = TypeAdapter(DEFS[name])
    definition = COMMON["$defs"][name]
    values = [*TRICKY, *definition["examples"], *(e["value"] for e in definition["x-counterexamples"])]
    for value in values:
        try:
            parsed = adapter.validate_python(value)
            model_ok = True
        except ValidationError:
            model_ok = False
        assert def_validator(name).is_valid(value) == model_ok, repr(value)
        if model_ok:
            assert def_validator(name).is_valid(adapter.dump_python(parsed, mode="json"))


# --- model behaviour ------------------------------------------------------------------------------------

TICK = SCHEMAS["price_tick.v1.schema.json"]["examples"][0]


def test_models_are_frozen():
    tick = PriceTick.model_validate(TICK)
    with pytest.raises(ValidationError):
        tick.bid = Decimal("1")


def test_decimal_strings_keep_their_digits():
    tick = PriceTick.model_validate({**TICK, "bid": "1.10", "ask": "1.10000"})
    assert tick.bid == Decimal("1.10") and str(tick.bid) == "1.10"
    assert tick.model_dump(mode="json")["ask"] == "1.10000"
    assert tick.model_dump()["bid"] == Decimal("1.10")  # python mode keeps Decimal


def test_python_callers_may_pass_decimals_but_not_floats():
    tick = PriceTick.model_validate({**TICK, "bid": Decimal("1.03412")})
    assert tick.bid == Decimal("1.03412")
    with pytest.raises(ValidationError):
        PriceTick.model_validate({**TICK, "bid": Decimal("1.034121234")})  # too many places: refused, not rounded
    with pytest.raises(ValidationError):
        PriceTick.model_validate({**TICK, "bid": 1.03412})


def test_timestamps_are_utc():
    ts = datetime(2025, 1, 6, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    tick = PriceTick.model_validate({**TICK, "ts": ts})
    assert tick.ts == datetime(2025, 1, 6, 12, 0, tzinfo=UTC) and tick.ts.tzinfo is UTC
    assert tick.model_dump(mode="json")["ts"] == "2025-01-06T12:00:00Z"
    with pytest.raises(ValidationError):
        PriceTick.model_validate({**TICK, "ts": datetime(2025, 1, 6, 12, 0)})  # naive


def test_timestamp_and_uuid_strings_at_their_edges():
    ts = TypeAdapter(DEFS["Timestamp"])
    assert ts.validate_python("2025-01-06T12:00:00.5Z") == datetime(2025, 1, 6, 12, 0, 0, 500000, tzinfo=UTC)
    assert ts.validate_python("2024-02-29T23:59:59.000001Z") == datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC)
    assert ts.validate_python("0999-01-06T12:00:00Z").year == 999
    for bad in ("2025-02-30T12:00:00Z", "2025-01-06T12:00:00Z\n", "2025-01-06T12:00:60Z", "2025-01-06T24:00:00Z",
                "\uff12025-01-06T12:00:00Z", "2025-01-06t12:00:00Z"):
        with pytest.raises(ValidationError):
            ts.validate_python(bad)
    # the wire form: six fraction digits when there is a fraction, none otherwise; four year digits
    half = datetime(2025, 1, 6, 12, 0, 0, 500000, tzinfo=UTC)
    assert ts.dump_python(half, mode="json") == "2025-01-06T12:00:00.500000Z"
    assert ts.dump_python(datetime(2025, 1, 6, 13, 0, tzinfo=timezone(timedelta(hours=1))),
                          mode="json") == "2025-01-06T12:00:00Z"
    assert ts.dump_python(datetime(999, 1, 6, 12, 0, tzinfo=UTC), mode="json") == "0999-01-06T12:00:00Z"
    uid = TypeAdapter(DEFS["Uuid"])
    assert uid.validate_python("5f0c2b8e-6a1d-4c3e-9b7a-1d2e3f4a5b6c") == UUID("5f0c2b8e-6a1d-4c3e-9b7a-1d2e3f4a5b6c")
    for bad in ("5f0c2b8e-6a1d-4c3e-9b7a-1d2e3f4a5b6c\n", "5F0C2B8E-6A1D-4C3E-9B7A-1D2E3F4A5B6C",
                "{5f0c2b8e-6a1d-4c3e-9b7a-1d2e3f4a5b6c}", "5f0c2b8e6a1d4c3e9b7a1d2e3f4a5b6c"):
        with pytest.raises(ValidationError):
            uid.validate_python(bad)


def test_enums_are_python_enums():
    signal = Signal.model_validate(SCHEMAS["signal.v1.schema.json"]["examples"][0])
    assert signal.direction is Direction.LONG
    assert signal.model_dump(mode="json")["direction"] == "LONG"


def test_execution_report_status_rules():
    base = SCHEMAS["execution_report.v1.schema.json"]["examples"][1]
    assert ExecutionReport.model_validate(base).avg_price == Decimal("1.03441")
    for status in ("PARTIAL", "FILLED", "CLOSED"):
        with pytest.raises(ValidationError):
            ExecutionReport.model_validate({**base, "status": status, "avg_price": None})
    cancelled = ExecutionReport.model_validate({**base, "status": "CANCELLED", "filled_lots": "0", "avg_price": None})
    assert cancelled.reason is None


# --- envelope ---------------------------------------------------------------------------------------------

CLOCK = datetime(2025, 1, 6, 12, 0, 0, 251337, tzinfo=UTC)


def test_make_envelope_root_event():
    tick = PriceTick.model_validate(TICK)
    env = make_envelope(tick, "data-ingestor", CLOCK)
    assert env.event_type == "PriceTick" and env.schema_version == PriceTick.SCHEMA_VERSION
    assert env.correlation_id == env.event_id and env.causation_id is None
    assert env.ts_event == tick.ts and env.ts_init == CLOCK
    assert env.topic == "eafix.price.tick" and env.data is tick
    wire = env.model_dump_json()
    assert schema_validator(ENVELOPE_SCHEMA_FILE).is_valid(json.loads(wire))
    assert parse_envelope(wire) == env
    assert parse_envelope(wire.encode()) == env
    assert parse_envelope(json.loads(wire)) == env


def test_make_envelope_follows_causation():
    parent = make_envelope(PriceTick.model_validate(TICK), "data-ingestor", CLOCK)
    signal = Signal.model_validate(SCHEMAS["signal.v1.schema.json"]["examples"][0])
    child = make_envelope(signal, "signal-generator", CLOCK + timedelta(minutes=5), causation=parent)
    assert child.causation_id == parent.event_id
    assert child.correlation_id == parent.correlation_id != child.event_id
    assert child.ts_event == signal.ts
    explicit = UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
    assert make_envelope(signal, "signal-generator", CLOCK, correlation_id=explicit,
                         causation=parent).correlation_id == explicit


def test_make_envelope_without_event_time_uses_the_clock_and_given_id():
    intent = OrderIntent.model_validate(SCHEMAS["order_intent.v1.schema.json"]["examples"][0])
    eid = UUID("c3d2e1f0-a9b8-4c7d-9e6f-5a4b3c2d1e0f")
    env = make_envelope(intent, "risk-manager", CLOCK, event_id=eid)
    assert env.ts_event == CLOCK and env.event_id == eid == env.correlation_id
    assert env.model_dump(mode="json")["event_id"] == str(eid)


def test_make_envelope_refuses_a_naive_clock_and_a_bad_producer():
    event = SystemRiskOff(active=True, reason="test", source="operator:alice")
    with pytest.raises(ValidationError):
        make_envelope(event, "gui-gateway", datetime(2025, 1, 6, 12, 0))
    with pytest.raises(ValidationError):
        make_envelope(event, "GUI", CLOCK)


def test_envelope_refuses_data_of_another_type():
    signal = Signal.model_validate(SCHEMAS["signal.v1.schema.json"]["examples"][0])
    env = make_envelope(signal, "signal-generator", CLOCK)
    with pytest.raises(ValidationError):
        Envelope(**{**dict(env), "event_type": "PriceTick"})
    wire = json.loads(env.model_dump_json())
    with pytest.raises(ValidationError, match="unknown event_type"):
        parse_envelope({**wire, "event_type": "Heartbeat"})
    with pytest.raises(ValidationError, match="served at major 1"):
        parse_envelope({**wire, "schema_version": "2.0"})
    assert parse_envelope({**wire, "schema_version": "1.9"}).schema_version == "1.9"
