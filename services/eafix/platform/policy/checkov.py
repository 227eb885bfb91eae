"""Run the checkov CLI on rendered objects and read its failed and skipped checks.

checkov pins ``packaging<24`` and so lives in its own virtualenv (``make tools`` creates
``.tools/checkov``). The binary is found through ``EAFIX_CHECKOV``, else
``<repo>/.tools/checkov/bin/checkov``. checkov honours the chart's ``checkov.io/skipN:
"<ID>=<reason>"`` annotations itself; they come back as skipped checks with their reasons.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..profiles import REPO
from ._k8s import Finding, Obj

TOOL = "checkov"
ENV_VAR = "EAFIX_CHECKOV"
TOOL_VENV_BINARY = Path(".tools/checkov/bin/checkov")
# Offline: no Prisma Cloud guideline download, no version check, nothing leaves the machine.
BASE_ARGS = ("--framework", "kubernetes", "--output", "json", "--compact", "--skip-download")


class CheckovNotInstalled(RuntimeError):
    """Neither EAFIX_CHECKOV nor the tool virtualenv provides a checkov binary."""


class CheckovError(RuntimeError):
    """checkov ran but its output could not be read."""


@dataclass(frozen=True)
class Skip:
    check: str
    kind: str
    name: str
    reason: str


@dataclass(frozen=True)
class CheckovReport:
    failed: list[Finding]
    skipped: list[Skip]
    passed: int
    resource_count: int
    version: str
    raw_summary: dict[str, Any] = field(default_factory=dict)


def find_checkov(repo: Path = REPO) -> Path:
    """The checkov binary: ``$EAFIX_CHECKOV``, else ``<repo>/.tools/checkov/bin/checkov``."""
    tried = []
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        tried.append(f"${ENV_VAR}={from_env}")
        if Path(from_env).is_file() and os.access(from_env, os.X_OK):
            return Path(from_env)
    venv = repo / TOOL_VENV_BINARY
    tried.append(str(venv))
    if venv.is_file() and os.access(venv, os.X_OK):
        return venv
    raise CheckovNotInstalled(
        "checkov is not installed (looked at " + ", ".join(tried) + "). Run `make tools` to create the "
        f"tool virtualenv .tools/checkov (checkov==3.3.30), or point {ENV_VAR} at a checkov binary."
    )


Locator = Callable[[Mapping[str, Any]], tuple[str, str]]


def _resource(result: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) from checkov's resource id ``Kind.namespace.name``."""
    parts = str(result.get("resource", "")).split(".", 2)
    return (parts[0], parts[2]) if len(parts) == 3 else (parts[0], parts[-1])


def document_locator(stream: str) -> Locator:
    """Map a checkov result to the (kind, name) of the YAML document its line range starts in.

    Graph checks (CKV2_*) report a Pod that checkov synthesises from a Deployment's template,
    named after the template labels; the line range still points at the Deployment itself.
    """
    starts: list[int] = []
    docs: list[tuple[str, str]] = []
    chunk: list[str] = []
    chunk_start = 1
    for number, line in enumerate([*stream.splitlines(), "---"], start=1):
        if re.match(r"^---(\s|$)", line):
            doc = yaml.safe_load("\n".join(chunk)) if chunk else None
            if isinstance(doc, Mapping):
                starts.append(chunk_start)
                docs.append((str(doc.get("kind", "")), str((doc.get("metadata") or {}).get("name", ""))))
            chunk, chunk_start = [], number + 1
        else:
            chunk.append(line)

    def locate(result: Mapping[str, Any]) -> tuple[str, str]:
        first = (result.get("file_line_range") or [0])[0]
        index = bisect.bisect_right(starts, first) - 1
        return docs[index] if index >= 0 else _resource(result)

    return locate


def _load_json(stdout: str) -> Any:
    """The JSON document in checkov's stdout (anything it logs before it is ignored)."""
    starts = [i for i in (stdout.find("{"), stdout.find("[")) if i >= 0]
    if not starts:
        raise CheckovError(f"checkov printed no JSON: {stdout[:500]!r}")
    doc, _ = json.JSONDecoder().raw_decode(stdout[min(starts) :])
    return doc


def parse_report(doc: Any, locate: Locator = _resource) -> CheckovReport:
    """Read checkov's ``--output json`` document (one framework: a dict; several: a list);
    ``locate`` names the object a result is about (default: checkov's resource id)."""
    reports = doc if isinstance(doc, list) else [doc]
    failed, skipped, passed, resources, version = [], [], 0, 0, ""
    summary: dict[str, Any] = {}
    for rep in reports:
        if rep.get("check_type") not in (None, "kubernetes"):
            continue
        results = rep.get("results") or {}
        for c in results.get("failed_checks") or []:
            failed.append(Finding(TOOL, c["check_id"], *locate(c), c.get("check_name", "")))
        for c in results.get("skipped_checks") or []:
            reason = (c.get("check_result") or {}).get("suppress_comment", "")
            skipped.append(Skip(c["check_id"], *locate(c), reason))
        summary = rep.get("summary") or {}
        passed += int(summary.get("passed", 0))
        resources += int(summary.get("resource_count", 0))
        version = summary.get("checkov_version", version)
    return CheckovReport(
        sorted(set(failed)),
        sorted(set(skipped), key=lambda s: (s.check, s.kind, s.name)),
        passed,
        resources,
        version,
        summary,
    )


def run_checkov(
    target: Sequence[Obj] | str | Path, *, binary: Path | None = None, extra_args: Iterable[str] = ()
) -> CheckovReport:
    """Run checkov on a YAML stream file, or on objects (written to a temporary stream first)."""
    exe = binary or find_checkov()
    with tempfile.TemporaryDirectory(prefix="eafix-checkov-") as tmp:
        if isinstance(target, str | Path):
            path = Path(target).resolve()
            stream = path.read_text()
        else:
            path = Path(tmp) / "rendered.yaml"
            stream = yaml.safe_dump_all(list(target), sort_keys=False)
            path.write_text(stream)
        proc = subprocess.run(
            [str(exe), "--file", str(path), *BASE_ARGS, *extra_args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp,
        )
    if proc.returncode not in (0, 1):  # 1 means "some check failed"
        raise CheckovError(f"checkov exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    try:
        return parse_report(_load_json(proc.stdout), document_locator(stream))
    except (ValueError, KeyError) as exc:
        raise CheckovError(
            f"unreadable checkov output: {exc}; stderr: {proc.stderr.strip()[-1000:]}"
        ) from exc


def findings(objects: Sequence[Obj], **kw: Any) -> list[Finding]:
    return run_checkov(objects, **kw).failed
