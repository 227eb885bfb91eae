"""ci/check_schema_compat.py: what counts as a breaking change, and the git-driven CLI."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import check_schema_compat as compat
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ci" / "check_schema_compat.py"



BASE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.eafix.invalid/events/thing.v1.schema.json",
    "title": "Thing",
    "x-schema-version": "1.0",
    "type": "object",
    "additionalProperties": False,
    "required": ["symbol", "side", "lots", "confidence"],
    "properties": {
        "symbol": {"type": "string", "pattern": "^[A-Z]{6}$", "description": "instrument"},
        "side": {"type": "string", "enum": ["LONG", "SHORT"]},
        "lots": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,2})?$"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "volume": {"type": "integer", "minimum": 0},
        "note": {"type": ["string", "null"], "maxLength": 100},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
    },
    "examples": [{"symbol": "EURUSD", "side": "LONG", "lots": "1.00", "confidence": 0.5}],
}


def changed(mutator, base=BASE):
    new = copy.deepcopy(base)
    mutator(new)
    return compat.compare_schemas(base, new, name="thing.v1.schema.json")


def one(lines: list[str], *fragments: str) -> str:
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines
    return lines[0]


# --- breaking -------------------------------------------------------------------------------------------


def test_identical_schema_is_compatible():
    assert changed(lambda s: None) == []


def test_removed_property_is_breaking():
    def drop(s):
        del s["properties"]["volume"]
    one(changed(drop), "properties.volume", "property removed")


def test_removed_required_property_is_reported_once():
    def drop(s):
        del s["properties"]["lots"]
        s["required"].remove("lots")
    one(changed(drop), "properties.lots", "property removed")


def test_changed_type_is_breaking():
    def to_number(s):
        s["properties"]["lots"] = {"type": "number"}
    line = one(changed(to_number), "properties.lots", "type changed from string to number")
    assert line.startswith("thing.v1.schema.json: ")


def test_nullable_removed_is_breaking_and_added_is_not():
    def not_null(s):
        s["properties"]["note"]["type"] = "string"
    one(changed(not_null), "properties.note", "type changed")

    def nullable_via_anyof(s):
        s["properties"]["symbol"] = {"anyOf": [copy.deepcopy(BASE["properties"]["symbol"]), {"type": "null"}]}
    assert changed(nullable_via_anyof) == []

    before = copy.deepcopy(BASE)
    nullable_via_anyof(before)
    after = copy.deepcopy(before)
    after["properties"]["symbol"]["anyOf"].pop()
    one(compat.compare_schemas(before, after), "properties.symbol", "anyOf branch 1 (null) is no longer accepted")


def test_integer_to_number_widens():
    def widen(s):
        s["properties"]["volume"]["type"] = "number"
    assert changed(widen) == []

    def narrow(s):
        s["properties"]["confidence"]["type"] = "integer"
    one(changed(narrow), "properties.confidence", "type changed from number to integer")


def test_enum_narrowing_is_breaking_widening_is_not():
    def narrow(s):
        s["properties"]["side"]["enum"] = ["LONG"]
    one(changed(narrow), "properties.side", "enum narrowed", '"SHORT"')

    def widen(s):
        s["properties"]["side"]["enum"] = ["LONG", "SHORT", "FLAT"]
    assert changed(widen) == []


def test_new_required_field_is_breaking():
    def require(s):
        s["required"].append("volume")
    one(changed(require), "new required field 'volume'")

    def require_new(s):
        s["properties"]["account"] = {"type": "string"}
        s["required"].append("account")
    one(changed(require_new), "new required field 'account'")


def test_removing_a_required_entry_is_not_breaking():
    def relax(s):
        s["required"].remove("confidence")
    assert changed(relax) == []


def test_new_optional_property_is_fine_when_extras_were_refused():
    def add(s):
        s["properties"]["comment"] = {"type": "string"}
    assert changed(add) == []


def test_new_property_constrains_former_extras():
    open_base = copy.deepcopy(BASE)
    open_base["additionalProperties"] = True

    def add(s):
        s["properties"]["comment"] = {"type": "string"}
    one(changed(add, open_base), "properties.comment", "type constraint added")


def test_additional_properties_loosened_is_fine_tightened_is_breaking():
    def loosen(s):
        s["additionalProperties"] = True
    assert changed(loosen) == []

    def drop(s):
        del s["additionalProperties"]
    assert changed(drop) == []

    open_base = copy.deepcopy(BASE)
    del open_base["additionalProperties"]

    def tighten(s):
        s["additionalProperties"] = False
    one(changed(tighten, open_base), "additionalProperties", "refuses every value")


def test_bounds_and_patterns():
    def raise_min(s):
        s["properties"]["confidence"]["minimum"] = 0.5
    one(changed(raise_min), "properties.confidence", "lower bound tightened to >= 0.5")

    def exclusive(s):
        s["properties"]["confidence"]["exclusiveMaximum"] = 1
        del s["properties"]["confidence"]["maximum"]
    one(changed(exclusive), "upper bound tightened to < 1")

    def lower_max(s):
        s["properties"]["confidence"]["maximum"] = 2
    assert changed(lower_max) == []

    def pattern(s):
        s["properties"]["lots"]["pattern"] = "^[0-9]+(\\.[0-9])?$"
    one(changed(pattern), "properties.lots", "pattern changed")

    def drop_pattern(s):
        del s["properties"]["symbol"]["pattern"]
    assert changed(drop_pattern) == []

    def lengths(s):
        s["properties"]["note"]["maxLength"] = 50
        s["properties"]["tags"]["maxItems"] = 10
        s["properties"]["tags"]["uniqueItems"] = True
    lines = changed(lengths)
    assert len(lines) == 2 and "maxLength lowered to 50" in lines[0] and "uniqueItems added" in lines[1]

    def item_type(s):
        s["properties"]["tags"]["items"] = {"type": "string", "enum": ["a"]}
    one(changed(item_type), "properties.tags.items", "enum added")


def test_added_conditional_is_breaking():
    def conditional(s):
        s["allOf"] = [{"if": {"properties": {"side": {"const": "LONG"}}}, "then": {"required": ["volume"]}}]
    one(changed(conditional), "allOf.0", "constraint added")


def test_annotations_do_not_matter():
    def annotate(s):
        s["title"] = "Other"
        s["properties"]["symbol"]["description"] = "changed"
        s["examples"] = []
        s["x-topic"] = "eafix.other"
    assert changed(annotate) == []


def test_property_named_like_an_annotation_is_still_compared():
    base = copy.deepcopy(BASE)
    base["properties"]["title"] = {"type": "string"}

    def narrow(s):
        s["properties"]["title"]["maxLength"] = 3
    one(changed(narrow, base), "properties.title", "maxLength lowered")


def test_major_version_bump_allows_anything():
    def v2(s):
        s["x-schema-version"] = "2.0"
        del s["properties"]["volume"]
        s["properties"]["side"]["enum"] = ["BUY", "SELL"]
    assert changed(v2) == []


def test_minor_version_bump_does_not_excuse_a_break():
    def v1_1(s):
        s["x-schema-version"] = "1.1"
        del s["properties"]["volume"]
    one(changed(v1_1), "property removed")


def test_references_to_shared_definitions_are_inlined():
    common = {"$id": "https://schemas.eafix.invalid/events/common.v1.schema.json", "x-schema-version": "1.0",
              "$defs": {"Direction": {"type": "string", "enum": ["LONG", "SHORT"]}}}
    thing = copy.deepcopy(BASE)
    thing["properties"]["side"] = {"$ref": "common.v1.schema.json#/$defs/Direction", "description": "side"}
    old_files = {"common.v1.schema.json": common, "thing.v1.schema.json": thing}
    new_files = copy.deepcopy(old_files)
    new_files["common.v1.schema.json"]["$defs"]["Direction"]["enum"] = ["LONG"]
    assert compat.compare_trees(old_files, old_files) == []
    lines = compat.compare_trees(old_files, new_files)
    one(lines, "thing.v1.schema.json: properties.side", "enum narrowed")


def test_unresolvable_reference_is_reported():
    thing = copy.deepcopy(BASE)
    thing["properties"]["side"] = {"$ref": "missing.v1.schema.json#/$defs/Direction"}
    lines = compat.compare_trees({"thing.v1.schema.json": BASE}, {"thing.v1.schema.json": thing})
    one(lines, "does not exist")


# --- file sets ------------------------------------------------------------------------------------------


def test_base_without_schemas_means_everything_is_new():
    notes = []
    assert compat.compare_trees({}, {"thing.v1.schema.json": BASE}, notes.append) == []
    assert notes == ["thing.v1.schema.json: new schema"]


def test_removed_schema_is_breaking_unless_a_higher_major_replaces_it():
    one(compat.compare_trees({"thing.v1.schema.json": BASE}, {}), "thing.v1.schema.json: schema removed")
    v2 = copy.deepcopy(BASE)
    v2["x-schema-version"] = "2.0"
    v2["$id"] = v2["$id"].replace(".v1.", ".v2.")
    assert compat.compare_trees({"thing.v1.schema.json": BASE}, {"thing.v2.schema.json": v2}) == []


def test_inconsistent_major_is_reported():
    bad = copy.deepcopy(BASE)
    bad["x-schema-version"] = "2.0"  # file name and $id still say v1
    lines = compat.compare_trees({"thing.v1.schema.json": BASE}, {"thing.v1.schema.json": bad})
    one(lines, "major version disagrees")


def test_compatible_change_without_minor_bump_is_a_note():
    def add(s):
        s["properties"]["comment"] = {"type": "string"}
    new = copy.deepcopy(BASE)
    add(new)
    notes = []
    assert compat.compare_trees({"thing.v1.schema.json": BASE}, {"thing.v1.schema.json": new}, notes.append) == []
    assert notes and "bump the minor" in notes[0]


def test_repository_schemas_are_compatible_with_themselves():
    files = compat.files_in_tree(REPO / compat.SCHEMAS_DIR)
    assert len(files) >= 12
    assert compat.compare_trees(files, copy.deepcopy(files)) == []


# --- the CLI on a real git repository ---------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--repo", str(repo), *args],
                          capture_output=True, text=True, check=False)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_cli_against_a_temporary_git_repository(tmp_path):
    repo = tmp_path / "repo"
    schemas = repo / "schemas" / "events"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("no schemas yet\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "start")

    # commit 2 adds the schemas: against HEAD~1 (no schemas) everything is new -> ok
    schemas.mkdir(parents=True)
    for path in (REPO / "schemas" / "events").glob("*.schema.json"):
        shutil.copy(path, schemas / path.name)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "schemas")
    result = _run(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "" and "price_tick.v1.schema.json: new schema" in result.stderr

    # a breaking edit in the working tree: narrowed enum + removed property -> exit 1, one line each
    signal_path = schemas / "signal.v1.schema.json"
    signal = json.loads(signal_path.read_text())
    signal["properties"]["timeframe"] = {"type": "string", "enum": ["M1", "M5"]}
    del signal["properties"]["strategy"]
    signal["required"].remove("strategy")
    signal_path.write_text(json.dumps(signal, indent=2))
    result = _run(repo, "--base", "HEAD")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("BREAKING schemas/events/signal.v1.schema.json: ") for line in lines)
    assert any("properties.strategy: property removed" in line for line in lines)
    assert any("properties.timeframe: enum narrowed" in line for line in lines)

    # the same change as a new major (signal.v2 replaces signal.v1) -> ok
    signal["x-schema-version"] = "2.0"
    signal["$id"] = signal["$id"].replace(".v1.", ".v2.")
    signal_path.unlink()
    (schemas / "signal.v2.schema.json").write_text(json.dumps(signal, indent=2))
    result = _run(repo, "--base", "HEAD")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signal.v1.schema.json: superseded by a higher major" in result.stderr

    # a base revision that does not exist is an error, not a pass
    result = _run(repo, "--base", "no-such-rev")
    assert result.returncode == 2 and "error:" in result.stderr
