"""Property tests of the YAML configuration loaders: the strategies document
(`eafix.contracts.strategies.load_strategies_text` / `parse_strategies`, signal-generator and
indicator-engine), the re-entry matrix (`eafix.reentry_matrix_svc.matrix.parse_matrix` /
`load_matrix`) and compliance-monitor's regulation policy (`eafix.compliance_monitor.policy.load_policy`).

Covered: any text, a shipped default document with one character mutated, and YAML the safe loader
cannot build (`!!float x`, `!!timestamp x`, an impossible date, deep nesting) raise only the loader's
error type (StrategyConfigError, MatrixError, PolicyError) with the source named; a default document
with one value replaced by anything is accepted or refused with a message naming that value's key
(or its parent, for a rule that compares siblings); the matrix and the policy dumped back to YAML
load as the same model.
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eafix.compliance_monitor.policy import DEFAULT_POLICY, PolicyDocument, PolicyError, load_policy
from eafix.contracts.strategies import StrategyConfigError, load_strategies_text, parse_strategies
from eafix.reentry_matrix_svc.matrix import DEFAULT_MATRIX, MatrixError, load_matrix, parse_matrix
from service.property_strategies import fuzz_bytes, fuzz_text, mutated, near_numbers, replaced

STRATEGIES_TEXT = resources.files("eafix.signal_generator").joinpath("strategies.default.yaml").read_text("utf-8")
MATRIX_TEXT = DEFAULT_MATRIX.read_text(encoding="utf-8")
POLICY_TEXT = DEFAULT_POLICY.read_text(encoding="utf-8")
STRATEGIES_DOC, MATRIX_DOC, POLICY_DOC = (yaml.safe_load(t) for t in (STRATEGIES_TEXT, MATRIX_TEXT, POLICY_TEXT))
UNBUILDABLE = ["a: !!float abc", "a: !!int x1", "a: !!bool maybe", "a: !!timestamp soon", "a: 2025-13-45",
               "a: !!binary '%%'", "? [a, b]\n: 1", "<<: 1"]
DEEP = "[" * 500 + "]" * 500  # nested past the recursion limit (an explicit example: it takes ~0.3 s)
leaf_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | fuzz_text
                           | near_numbers, lambda inner: st.lists(inner, max_size=2)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=2), max_leaves=4)
texts = fuzz_text | st.sampled_from(UNBUILDABLE)


def policy_from_text(text: str | bytes) -> PolicyDocument:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "policy.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return load_policy(path)


def matrix_from_bytes(data: bytes):
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "matrix.yaml"
        path.write_bytes(data)
        return load_matrix(path)


def leaves(node: Any, path: tuple = ()) -> list[tuple]:
    """The paths of every scalar in a decoded document."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in leaves(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in leaves(v, (*path, i))]
    return [path]



def dotted(path: tuple, brackets: bool) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if brackets and isinstance(part, int) else ("." if text else "") + str(part)
    return text


def names_key(message: str, path: tuple, brackets: bool) -> bool:
    """The message names the key at `path` or its parent (a validator comparing siblings reports there)."""
    return any(dotted(path[:n], brackets) in message for n in (len(path), len(path) - 1) if n > 0)


@given(texts | mutated(st.just(STRATEGIES_TEXT)))
@example("a: 2025-13-45")  # was a raw ValueError from the YAML loader
@example(DEEP)
def test_strategies_text_loads_or_raises_strategy_config_error(text) -> None:
    try:
        load_strategies_text(text, "strategies.yaml")
    except StrategyConfigError as exc:
        assert exc.source == "strategies.yaml" and exc.errors


@given(texts | mutated(st.just(MATRIX_TEXT)))
@example("a: !!timestamp soon")  # was a raw AttributeError
@example(DEEP)
def test_matrix_text_parses_or_raises_matrix_error(text) -> None:
    try:
        parse_matrix(text, "matrix.yaml")
    except MatrixError as exc:
        assert str(exc).startswith("matrix.yaml: ")


@given(texts | mutated(st.just(POLICY_TEXT)) | fuzz_bytes)
@example(DEEP)  # was a RecursionError
@example(b"\xff")  # not UTF-8: was a raw UnicodeDecodeError
def test_policy_text_loads_or_raises_policy_error(text) -> None:
    try:
        policy_from_text(text)
    except PolicyError as exc:
        assert "policy.yaml: " in str(exc)


@given(fuzz_bytes | mutated(st.just(MATRIX_TEXT)).map(str.encode))
@example(b"\xff")  # not UTF-8: was a raw UnicodeDecodeError
def test_matrix_file_loads_or_raises_matrix_error(data) -> None:
    try:
        matrix_from_bytes(data)
    except MatrixError as exc:
        assert "matrix.yaml: " in str(exc)


@given(st.data(), leaf_values)
def test_a_replaced_strategy_value_is_named(data, value) -> None:
    document = STRATEGIES_DOC  # `replaced` copies what it changes
    path = data.draw(st.sampled_from(leaves(document)))
    try:
        parse_strategies(replaced(document, path, value), "strategies.yaml")
    except StrategyConfigError as exc:
        assert any(names_key(line, path, brackets=True) for line in exc.errors), (path, exc.errors)


@settings(max_examples=30)  # each example dumps and reloads the whole document (pure-Python YAML)
@given(st.data(), leaf_values)
def test_a_replaced_matrix_value_is_named(data, value) -> None:
    document = MATRIX_DOC  # `replaced` copies what it changes
    path = data.draw(st.sampled_from(leaves(document)))
    try:
        parse_matrix(yaml.safe_dump(replaced(document, path, value)), "matrix.yaml")
    except MatrixError as exc:
        assert names_key(str(exc), path, brackets=False), (path, str(exc))


@settings(max_examples=30)  # each example dumps and reloads the whole document (pure-Python YAML)
@given(st.data(), leaf_values)
def test_a_replaced_policy_value_is_named(data, value) -> None:
    document = POLICY_DOC  # `replaced` copies what it changes
    path = data.draw(st.sampled_from(leaves(document)))
    try:
        policy_from_text(yaml.safe_dump(replaced(document, path, value)))
    except PolicyError as exc:
        assert names_key(str(exc), path, brackets=False) or "appears twice" in str(exc), (path, str(exc))


def test_matrix_and_policy_round_trip_through_yaml() -> None:
    matrix = load_matrix()
    assert parse_matrix(yaml.safe_dump(matrix.model_dump(mode="json", exclude_none=True))) == matrix
    policy = load_policy(DEFAULT_POLICY)
    assert policy_from_text(yaml.safe_dump(policy.model_dump(mode="json"))) == policy
