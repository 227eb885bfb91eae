"""The re-entry matrix: its JSON Schema and the models accept the same documents, the shipped
default is valid, the ladder resolves every key to exactly one decision at the expected tier, and a
bad document is refused naming the path."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

from eafix.reentry_matrix_svc.classify import Duration, Outcome
from eafix.reentry_matrix_svc.matrix import (
    DEFAULT_MATRIX,
    Action,
    Generation,
    Matrix,
    MatrixError,
    Proximity,
    load_matrix,
    parse_matrix,
)

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "reentry" / "matrix.v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def model_accepts(document: dict) -> bool:
    try:
        Matrix.model_validate(document)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("document", SCHEMA["examples"] + [yaml.safe_load(DEFAULT_MATRIX.read_text())])
def test_examples_and_the_default_are_accepted_by_both(document):
    VALIDATOR.validate(document)
    assert model_accepts(document)


@pytest.mark.parametrize("case", SCHEMA["x-counterexamples"], ids=lambda c: c["why"])
def test_counterexamples_are_refused_by_both(case):
    assert not VALIDATOR.is_valid(case["document"])
    assert not model_accepts(case["document"])


MATRIX = parse_matrix("""
version: 1
matrix_version: "1.4.2"
fallback: {action: NO_REENTRY, parameter_set: PS-safe}
families:
  ema_cross:
    default: {action: HOLD, parameter_set: PS-t3, delay_minutes: 10}
    cells:
      - {generation: O, outcome: O5, proximity: LG, duration: QUICK, action: SAME_TRADE, parameter_set: PS-t0}
      - {generation: O, outcome: O5, proximity: LG, action: REVERSE, parameter_set: PS-t1}
      - {generation: O, outcome: O5, action: INCREASE_SIZE, size_multiplier: "1.5", parameter_set: PS-t2}
""")


@pytest.mark.parametrize(("generation", "family", "duration", "outcome", "proximity", "tier", "parameter_set"), [
    (Generation.O, "ema_cross", Duration.QUICK, Outcome.O5, Proximity.LG, 0, "PS-t0"),  # exact
    (Generation.O, "ema_cross", Duration.LONG, Outcome.O5, Proximity.LG, 1, "PS-t1"),  # duration dropped
    (Generation.O, "ema_cross", Duration.QUICK, Outcome.O5, Proximity.IM, 2, "PS-t2"),  # proximity dropped too
    (Generation.O, "ema_cross", Duration.QUICK, Outcome.O4, Proximity.LG, 3, "PS-t3"),  # family default
    (Generation.R1, "ema_cross", Duration.QUICK, Outcome.O5, Proximity.LG, 3, "PS-t3"),  # other generation
    (Generation.O, "rsi_reversion", Duration.QUICK, Outcome.O5, Proximity.LG, 4, "PS-safe"),  # unknown family
])
def test_the_ladder(generation, family, duration, outcome, proximity, tier, parameter_set):
    resolution = MATRIX.resolve(generation, family, duration, outcome, proximity)
    assert (resolution.tier, resolution.decision.parameter_set) == (tier, parameter_set)
    assert MATRIX.parameter_set(resolution.decision) == f"{parameter_set}@1.4.2"


def test_every_key_resolves_to_a_decision():
    matrix = load_matrix()
    for generation in (Generation.O, Generation.R1):
        for family in (*matrix.families, "unknown"):
            for duration in Duration:
                for outcome in Outcome:
                    for proximity in Proximity:
                        resolution = matrix.resolve(generation, family, duration, outcome, proximity)
                        assert resolution.decision.action in Action and 0 <= resolution.tier <= 4


def test_decision_fields_and_defaults():
    cell = MATRIX.resolve(Generation.O, "ema_cross", Duration.QUICK, Outcome.O5, Proximity.IM).decision
    assert (cell.action, cell.size_multiplier, cell.delay_minutes, cell.confidence_adjustment) == (
        Action.INCREASE_SIZE, Decimal("1.5"), 0, 0.0)


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nmatrix_version: '1.0.0'\nfallback: {action: NO_REENTRY, parameter_set: PS-x}\nfamilies:\n"
     "  f:\n    default: {action: NO_REENTRY, parameter_set: PS-x}\n    cells:\n"
     "      - {generation: O, outcome: O5, action: SAME_TRADE, parameter_set: PS-a}\n"
     "      - {generation: O, outcome: O5, action: REVERSE, parameter_set: PS-b}\n",
     "families.f: Value error, two cells for O/O5"),
    ("version: 1\nmatrix_version: '1.0'\nfallback: {action: NO_REENTRY, parameter_set: PS-x}\n",
     "matrix_version: String should match pattern"),
    ("version: 1\nmatrix_version: '1.0.0'\nfallback: {action: NO_REENTRY, parameter_set: PS-x}\nfamilies:\n"
     "  f: {default: {action: JUMP, parameter_set: PS-x}}\n", "families.f.default.action: Input should be"),
    ("version: [1\n", "m.yaml: not YAML"),
])
def test_bad_documents_name_the_path(text, message):
    with pytest.raises(MatrixError) as caught:
        parse_matrix(text, "m.yaml")
    assert message in str(caught.value) and str(caught.value).startswith("m.yaml: ")
