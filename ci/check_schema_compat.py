#!/usr/bin/env python3
"""Flag breaking changes of the event schemas against a git revision.

    python ci/check_schema_compat.py                 # working tree vs HEAD~1
    python ci/check_schema_compat.py --base origin/main

Compares every `schemas/events/*.schema.json` of the working tree with the same file at `--base`
and prints one line per breaking change (exit 1), nothing on stdout when there is none (exit 0).
Notes (new schemas, a major version bump, a change without a version bump) go to stderr.
Exit 2: the base revision or a schema cannot be read.

A change is breaking when a document valid under the base schema may be refused by the new one,
or when a property disappears (old readers may rely on it):
- a property removed; a field newly required;
- a type changed or narrowed (integer -> number widens), an enum/const narrowed;
- a bound tightened (minimum, maximum, lengths, item/property counts, multipleOf, uniqueItems);
- a pattern or format added or changed (a new regex cannot be proven to accept the old strings);
- additionalProperties / items / propertyNames narrowed; a new property where extra properties
  used to be allowed that constrains them; an anyOf/oneOf branch lost;
- any other assertion added or changed (allOf entries, if/then/else, not, ...);
- a schema file removed, unless a file of the same name with a higher major replaces it.
Loosening (additionalProperties false -> true, a removed `required`, a widened enum or bound, a
new optional property where extra properties were refused) is not breaking.

No change is breaking when the major version moved: a file's MAJOR is its `x-schema-version`
(else the `.v<N>.` of its `$id` / file name); a new major lives in a new file (`x.v2.schema.json`).
`$ref`s to other schema files and to `$defs` are inlined before comparing, so narrowing a shared
definition in common.v1.schema.json is reported in every schema that uses it. Annotations
(title, description, examples, x-*, ...) are ignored.

`compare_schemas()`, `compare_trees()` and `main()` are importable for tests.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMAS_DIR = "schemas/events"
SUFFIX = ".schema.json"

ANNOTATIONS = frozenset({
    "title", "description", "examples", "default", "$comment", "deprecated", "readOnly", "writeOnly",
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$defs", "definitions", "contentMediaType",
    "contentEncoding",
})
# keywords compared by dedicated rules below; everything else falls back to "must be unchanged"
HANDLED = frozenset({
    "type", "enum", "const", "pattern", "format", "minimum", "exclusiveMinimum", "maximum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
    "maxProperties", "multipleOf", "uniqueItems", "required", "properties", "additionalProperties",
    "propertyNames", "items", "prefixItems", "anyOf", "oneOf", "allOf",
})
# keywords whose value maps names (property names, definition names) to subschemas
SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
LOWER_LIMITS = ("minLength", "minItems", "minProperties")
UPPER_LIMITS = ("maxLength", "maxItems", "maxProperties")

Schema = dict[str, Any] | bool


class SchemaError(Exception):
    """A schema cannot be read or a $ref cannot be resolved."""


# --- versions --------------------------------------------------------------------------------------


def major_version(schema: Any, file_name: str = "") -> int | None:
    """MAJOR from x-schema-version ("1.2"), else from `.v<N>.` in $id or the file name."""
    if isinstance(schema, dict):
        version = schema.get("x-schema-version")
        if isinstance(version, str) and re.fullmatch(r"\d+\.\d+", version):
            return int(version.split(".")[0])
        for text in (schema.get("$id", ""), file_name):
            m = re.search(r"\.v(\d+)\.", str(text))
            if m:
                return int(m.group(1))
    m = re.search(r"\.v(\d+)\.", file_name)
    return int(m.group(1)) if m else None


def _stem(file_name: str) -> str:
    return re.sub(r"\.v\d+\.schema\.json$", "", file_name)


def version_problems(file_name: str, schema: Any) -> list[str]:
    """The file name, $id and x-schema-version must name the same MAJOR."""
    if not isinstance(schema, dict):
        return []
    found = {}
    m = re.search(r"\.v(\d+)\.schema\.json$", file_name)
    if m:
        found["file name"] = int(m.group(1))
    m = re.search(r"\.v(\d+)\.", str(schema.get("$id", "")))
    if m:
        found["$id"] = int(m.group(1))
    version = schema.get("x-schema-version")
    if version is not None:
        if not (isinstance(version, str) and re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)", version)):
            return [f"x-schema-version {version!r} is not MAJOR.MINOR"]
        found["x-schema-version"] = int(version.split(".")[0])
    if len(set(found.values())) > 1:
        return ["major version disagrees: " + ", ".join(f"{k} {v}" for k, v in found.items())]
    return []


# --- $ref inlining ---------------------------------------------------------------------------------


def _pointer(doc: Any, pointer: str, ref: str) -> Any:
    for token in [t for t in pointer.split("/") if t]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            raise SchemaError(f"unresolvable $ref {ref!r}")
    return doc


def inline_refs(node: Any, files: dict[str, Any], current: str, _stack: tuple[str, ...] = ()) -> Any:
    """`node` with every `$ref` to `#/...` or `<file>#/...` (a sibling file) replaced by its target.

    Keywords next to a `$ref` are merged over the target (our schemas only put descriptions there).
    """
    if isinstance(node, list):
        return [inline_refs(item, files, current, _stack) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        target_file, _, pointer = ref.partition("#")
        target_file = target_file.rsplit("/", 1)[-1] or current
        if target_file not in files:
            raise SchemaError(f"{current}: $ref {ref!r} names a file that does not exist")
        key = f"{target_file}#{pointer}"
        if key in _stack:
            raise SchemaError(f"{current}: recursive $ref {ref!r} is not supported")
        target = inline_refs(_pointer(files[target_file], pointer, ref), files, target_file, (*_stack, key))
        siblings = {k: inline_refs(v, files, current, _stack) for k, v in node.items() if k != "$ref"}
        if isinstance(target, bool):
            return target if not siblings else {"allOf": [target, siblings]}
        return {**target, **siblings}
    out = {}
    for key, value in node.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: inline_refs(sub, files, current, _stack) for name, sub in value.items()}
        elif key in ANNOTATIONS or key.startswith("x-") or key in ("enum", "const"):
            out[key] = value  # data or definitions, not subschemas to inline
        else:
            out[key] = inline_refs(value, files, current, _stack)
    return out


# --- comparison ------------------------------------------------------------------------------------


def _strip(schema: Any) -> Any:
    """Only the assertions of a schema (annotations and x-* removed), recursively."""
    if isinstance(schema, list):
        return [_strip(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _strip(sub) for name, sub in value.items()}  # names are data, not keywords
        elif key in ("enum", "const"):
            out[key] = value
        else:
            out[key] = _strip(value)
    return out


def _assertions(schema: Any) -> Any:
    """_strip() that keeps the definitions (to notice a changed shared definition)."""
    if not isinstance(schema, dict):
        return schema
    return {**_strip(schema), "$defs": {k: _strip(v) for k, v in schema.get("$defs", {}).items()}}


def _types(schema: dict) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _covered(t: str, new_types: set[str]) -> bool:
    return t in new_types or (t == "integer" and "number" in new_types)


def _fmt(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _lower_bound(schema: dict) -> tuple[float, bool] | None:
    bounds = []
    if isinstance(schema.get("minimum"), int | float):
        bounds.append((schema["minimum"], False))
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        bounds.append((schema["exclusiveMinimum"], True))
    return max(bounds) if bounds else None  # (v, True) > (v, False): exclusive is stricter


def _upper_bound(schema: dict) -> tuple[float, bool] | None:
    bounds = []
    if isinstance(schema.get("maximum"), int | float):
        bounds.append((schema["maximum"], False))
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        bounds.append((schema["exclusiveMaximum"], True))
    return min(bounds, key=lambda b: (b[0], not b[1])) if bounds else None


def _alternatives(schema: dict) -> list[dict] | None:
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            return [{**base, **branch} if isinstance(branch, dict) else branch for branch in schema[key]]
    return None


def _join(path: str, *parts: Any) -> str:
    return ".".join([p for p in (path, *map(str, parts)) if p])


def _compare(old: Schema, new: Schema, path: str) -> list[str]:
    if new is True or new == {}:
        return []
    if old is False:
        return []
    at = path or "<root>"
    if new is False:
        return [f"{at}: now refuses every value"]
    if old is True:
        old = {}
    assert isinstance(old, dict) and isinstance(new, dict)

    old_alts, new_alts = _alternatives(old), _alternatives(new)
    if old_alts is not None or new_alts is not None:
        return _compare_alternatives(old_alts or [old], new_alts or [new], path)
    return [problem for check in _CHECKS for problem in check(old, new, path, at)]


# Each check looks at one family of keywords of a (non-boolean) schema and returns what tightened.

def _check_type(old: dict, new: dict, path: str, at: str) -> list[str]:
    nt, ot = _types(new), _types(old)
    if nt is None:
        return []
    if ot is None:
        return [f"{at}: type constraint added ({'|'.join(sorted(nt))})"]
    if any(not _covered(t, nt) for t in ot):
        return [f"{at}: type changed from {'|'.join(sorted(ot))} to {'|'.join(sorted(nt))}"]
    return []


def _check_values(old: dict, new: dict, path: str, at: str) -> list[str]:
    """enum and const: the values allowed before must still be allowed."""
    out = []
    allowed_old = old["enum"] if "enum" in old else ([old["const"]] if "const" in old else None)
    if "enum" in new:
        lost = [v for v in allowed_old if v not in new["enum"]] if allowed_old is not None else None
        if lost is None:
            out.append(f"{at}: enum added {_fmt(new['enum'])}")
        elif lost:
            out.append(f"{at}: enum narrowed, removed {_fmt(lost)}")
    if "const" in new:
        if allowed_old is None:
            out.append(f"{at}: const {_fmt(new['const'])} added")
        elif any(v != new["const"] for v in allowed_old):
            out.append(f"{at}: const changed to {_fmt(new['const'])} (was {_fmt(allowed_old)})")
    return out


def _check_text(old: dict, new: dict, path: str, at: str) -> list[str]:
    out = []
    for key in ("pattern", "format"):
        if key in new and old.get(key) != new[key]:
            was = f" (was {old[key]!r})" if key in old else ""
            out.append(f"{at}: {key} {'changed' if key in old else 'added'} to {new[key]!r}{was}")
    return out


def _check_bounds(old: dict, new: dict, path: str, at: str) -> list[str]:
    out = []
    nlo, olo = _lower_bound(new), _lower_bound(old)
    if nlo is not None and (olo is None or nlo > olo):
        out.append(f"{at}: lower bound tightened to {'>' if nlo[1] else '>='} {nlo[0]}")
    nhi, ohi = _upper_bound(new), _upper_bound(old)
    if nhi is not None and (ohi is None or (nhi[0], not nhi[1]) < (ohi[0], not ohi[1])):
        out.append(f"{at}: upper bound tightened to {'<' if nhi[1] else '<='} {nhi[0]}")
    out += [f"{at}: {key} raised to {new[key]}" for key in LOWER_LIMITS if new.get(key, 0) > old.get(key, 0)]
    out += [f"{at}: {key} lowered to {new[key]}" for key in UPPER_LIMITS
            if key in new and new[key] < old.get(key, math.inf)]
    if "multipleOf" in new:
        om = old.get("multipleOf")
        if om is None or not (om / new["multipleOf"]).is_integer():
            out.append(f"{at}: multipleOf {new['multipleOf']} added or changed")
    if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
        out.append(f"{at}: uniqueItems added")
    return out


def _check_object(old: dict, new: dict, path: str, at: str) -> list[str]:
    out = [f"{_join(path, 'required')}: new required field {name!r}"
           for name in sorted(set(new.get("required", [])) - set(old.get("required", [])))]
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_extra = old.get("additionalProperties", True)
    for name in old_props:
        if name not in new_props:
            out.append(f"{_join(path, 'properties', name)}: property removed")
        else:
            out += _compare(old_props[name], new_props[name], _join(path, "properties", name))
    for name in new_props:
        if name not in old_props:  # documents used to carry it as an "additional" property
            out += _compare(old_extra, new_props[name], _join(path, "properties", name))
    out += _compare(old_extra, new.get("additionalProperties", True), _join(path, "additionalProperties"))
    out += _compare(old.get("propertyNames", True), new.get("propertyNames", True), _join(path, "propertyNames"))
    return out


def _check_array(old: dict, new: dict, path: str, at: str) -> list[str]:
    out: list[str] = []
    old_prefix = old.get("prefixItems", [])
    for i, item in enumerate(new.get("prefixItems", [])):
        before = old_prefix[i] if i < len(old_prefix) else old.get("items", True)
        out += _compare(before, item, _join(path, "prefixItems", i))
    return out + _compare(old.get("items", True), new.get("items", True), _join(path, "items"))


def _check_rest(old: dict, new: dict, path: str, at: str) -> list[str]:
    # allOf: every entry is a constraint; one the base did not have is breaking
    old_all = [_fmt(e) for e in old.get("allOf", [])]
    out = [f"{_join(path, 'allOf', i)}: constraint added or changed"
           for i, entry in enumerate(new.get("allOf", [])) if _fmt(entry) not in old_all]
    # everything else (if/then/else, not, dependentRequired, unresolved $ref, ...) must be unchanged
    return out + [f"{at}: {key} {'changed' if key in old else 'added'}" for key in sorted(set(new) - HANDLED)
                  if _fmt(new[key]) != _fmt(old.get(key))]


_CHECKS = (_check_type, _check_values, _check_text, _check_bounds, _check_object, _check_array, _check_rest)


def _compare_alternatives(old_alts: list, new_alts: list, path: str) -> list[str]:
    out = []
    for i, old in enumerate(old_alts):
        results = [_compare(old, new, path) for new in new_alts]
        if not all(results):
            continue  # some new alternative accepts everything this old one accepted
        if len(old_alts) == 1:
            out += min(results, key=len)
        else:
            kinds = "|".join(sorted(_types(old) or {"any type"})) if isinstance(old, dict) else str(old)
            out.append(f"{path or '<root>'}: anyOf branch {i} ({kinds}) is no longer accepted")
    return out


def compare_schemas(old: Any, new: Any, *, old_files: dict | None = None, new_files: dict | None = None,
                    name: str = "") -> list[str]:
    """Breaking changes from `old` to `new` (two schema documents), [] if the major moved.

    `old_files` / `new_files` ({file name: schema}) resolve `$ref`s to sibling files; `name` is the
    file name both documents have there.
    """
    old_major, new_major = major_version(old, name), major_version(new, name)
    if old_major is not None and new_major is not None and new_major > old_major:
        return []
    prefix = f"{name}: " if name else ""
    try:
        old_inl = inline_refs(old, {**(old_files or {}), name: old}, name)
        new_inl = inline_refs(new, {**(new_files or {}), name: new}, name)
    except SchemaError as exc:
        return [f"{prefix}{exc}"]
    lines = _compare(_strip(old_inl), _strip(new_inl), "")
    if old_major is not None and new_major is not None and new_major < old_major:
        lines.insert(0, f"major version went down from {old_major} to {new_major}")
    return [prefix + line for line in lines]


def _defs_removed(name: str, old: Any, new: Any) -> list[str]:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    return [f"{name}: $defs.{d}: definition removed" for d in old.get("$defs", {}) if d not in new.get("$defs", {})]


def compare_trees(old_files: dict[str, Any], new_files: dict[str, Any],
                  note: Callable[[str], None] = lambda _msg: None) -> list[str]:
    """Breaking changes between two sets of schema files ({file name: schema})."""
    out: list[str] = []
    for name in sorted(new_files):
        out += [f"{name}: {p}" for p in version_problems(name, new_files[name])]
    for name in sorted(old_files):
        old = old_files[name]
        if name not in new_files:
            majors = [major_version(new_files[n], n) or 0 for n in new_files if _stem(n) == _stem(name)]
            if any(m > (major_version(old, name) or 0) for m in majors):
                note(f"{name}: superseded by a higher major")
            else:
                out.append(f"{name}: schema removed")
            continue
        new = new_files[name]
        lines = compare_schemas(old, new, old_files=old_files, new_files=new_files, name=name)
        if major_version(new, name) == major_version(old, name):
            lines += _defs_removed(name, old, new)
        out += lines
        if (not lines and isinstance(old, dict) and isinstance(new, dict)
                and old.get("x-schema-version") == new.get("x-schema-version")
                and _fmt(_assertions(old)) != _fmt(_assertions(new))):
            note(f"{name}: assertions changed compatibly but x-schema-version is still "
                 f"{new.get('x-schema-version')} (bump the minor)")
    for name in sorted(set(new_files) - set(old_files)):
        note(f"{name}: new schema")
    return out


# --- git -------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SchemaError(f"git {' '.join(args)}: {result.stderr.strip() or 'failed'}")
    return result.stdout


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{where}: not valid JSON ({exc})") from exc


def files_at(repo: Path, rev: str, schemas_dir: str = SCHEMAS_DIR) -> dict[str, Any]:
    """{file name: schema} of `schemas_dir` at git revision `rev` ({} if it has none there)."""
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    listing = _git(repo, "ls-tree", "--name-only", commit, "--", schemas_dir.rstrip("/") + "/")
    files = {}
    for path in listing.splitlines():
        if path.endswith(SUFFIX):
            files[Path(path).name] = _parse(_git(repo, "show", f"{commit}:{path}"), f"{rev}:{path}")
    return files


def files_in_tree(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        return {}
    return {p.name: _parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(directory.glob("*" + SUFFIX))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision to compare with (default: HEAD~1)")
    parser.add_argument("--repo", default=".", help="a directory inside the git repository (default: .)")
    parser.add_argument("--schemas-dir", default=SCHEMAS_DIR,
                        help=f"relative to the repo root (default: {SCHEMAS_DIR})")
    args = parser.parse_args(argv)

    def note(message: str) -> None:
        print(f"note: {message}", file=sys.stderr)

    try:
        root = Path(_git(Path(args.repo), "rev-parse", "--show-toplevel").strip())
        old = files_at(root, args.base, args.schemas_dir)
        new = files_in_tree(root / args.schemas_dir)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    breaking = compare_trees(old, new, note)
    for line in breaking:
        print(f"BREAKING {args.schemas_dir}/{line}")
    print(f"{len(new)} schema file(s) checked against {args.base}: "
          f"{len(breaking)} breaking change(s)", file=sys.stderr)
    return 1 if breaking else 0


if __name__ == "__main__":
    sys.exit(main())
