#!/usr/bin/env python3
"""The documented value keys of a Bitnami chart, as a sorted list of dotted paths.

    python ci/bitnami_value_keys.py ../shared/reference/bitnami/redis-23.1.1-values.yaml \
        > tests/chart/data/bitnami-redis-23.1.1.keys
    python ci/bitnami_value_keys.py --check FILE.yaml KEYS   # exit 1 when KEYS is stale

A key is documented when it is a key of the chart's values.yaml or named by a `## @param` line.
A key whose default is a non-empty mapping is a branch (only its children are keys); any other
key is a leaf, and a leaf whose default is `{}` or null accepts free-form children (resources,
annotations, ...), which the list marks with a trailing `.*`. Only key names are kept: no
defaults, no descriptions (tests/chart/test_infra.py checks eafix-infra's values against them).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

_PARAM = re.compile(r"^\s*##\s*@param\s+([A-Za-z0-9_.\-\[\]/]+)")


def keys_of(text: str) -> list[str]:
    data = yaml.safe_load(text) or {}
    out: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        for k, v in node.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                walk(v, path + ".")
            else:
                out.add(path + (".*" if v is None or v == {} else ""))

    if isinstance(data, dict):
        walk(data, "")
    for line in text.splitlines():
        m = _PARAM.match(line)
        if m:
            name = m.group(1)
            if not any(k == name or k == name + ".*" or k.startswith(name + ".") for k in out):
                out.add(name)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("values", type=Path)
    parser.add_argument("keys", type=Path, nargs="?")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = "\n".join(keys_of(args.values.read_text())) + "\n"
    if args.check:  # `#` lines of KEYS (its header) are not compared
        kept = [line for line in (args.keys.read_text().splitlines() if args.keys else []) if not line.startswith("#")]
        if args.keys is None or "\n".join(kept) + "\n" != text:
            print(f"{args.keys} is stale: regenerate it from {args.values}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
