"""The policy exemptions objects carry, read from the annotations each tool honours.

- checkov: ``checkov.io/skipN: "<CHECK_ID>=<reason>"``
- Polaris: ``polaris.fairwinds.com/<check>-exempt: "true"`` (``polaris.fairwinds.com/exempt`` = all)
- kube-linter: ``ignore-check.kube-linter.io/<check>: "<reason>"`` (``kube-linter.io/ignore-all`` = all)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from . import kube_linter, polaris
from ._k8s import Obj, annotations_of, kind, name

ALL_CHECKS = "*"
_CHECKOV_SKIP = re.compile(r"^checkov\.io/skip\d+$")
_POLARIS_CHECK = re.compile(r"^polaris\.fairwinds\.com/(.+)-exempt$")


@dataclass(frozen=True, order=True)
class Exemption:
    tool: str
    check: str
    kind: str
    name: str
    reason: str  # the annotation's own reason (Polaris annotations carry none)


def exemptions(objects: Iterable[Obj]) -> list[Exemption]:
    """Every exemption annotation on the objects, sorted and de-duplicated."""
    out: set[Exemption] = set()
    for o in objects:
        for key, value in annotations_of(o).items():
            text = "" if value is None else str(value)
            if _CHECKOV_SKIP.match(key):
                check, _, reason = text.partition("=")
                out.add(Exemption("checkov", check.strip(), kind(o), name(o), reason.strip()))
            elif key == polaris.EXEMPT_ALL and text.lower() == "true":
                out.add(Exemption(polaris.TOOL, ALL_CHECKS, kind(o), name(o), ""))
            elif (m := _POLARIS_CHECK.match(key)) and text.lower() == "true":
                out.add(Exemption(polaris.TOOL, m.group(1), kind(o), name(o), ""))
            elif key.startswith(kube_linter.IGNORE_PREFIX):
                out.add(
                    Exemption(
                        kube_linter.TOOL, key.removeprefix(kube_linter.IGNORE_PREFIX), kind(o), name(o), text
                    )
                )
            elif key == kube_linter.IGNORE_ALL:
                out.add(Exemption(kube_linter.TOOL, ALL_CHECKS, kind(o), name(o), text))
    return sorted(out)
