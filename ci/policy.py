#!/usr/bin/env python3
"""The policy gate: render every chart with every profile (chart defaults, each values/<env>/
overlay, each ci/*-values.yaml) and run, on each render:

- the re-implemented kube-linter and Polaris default rules,
- kubernetes-validate --strict on the built-in kinds (Kubernetes 1.29 ... 1.37),
- the custom resources (Istio, prometheus-operator, cert-manager, ESO, Sealed Secrets, Argo CD) against
  their operators' published schemas (@kubernetes-models, ci/crd-validate; `make crd-validate`) and the
  operator rules those schemas omit,
- the Pod Security Standard `restricted` checks on every pod template,
- the flow-matrix checks: the NetworkPolicies and the Istio AuthorizationPolicies allow exactly the
  matrix the chart declares (its flow-matrix ConfigMap), evaluated with Kubernetes/Istio semantics,
- checkov (its own tool virtualenv; one run over all renders).

It prints one table per profile (tool, findings, reasoned skips) and the findings, and exits 1 when
any tool finds anything, or when an exemption annotation is not documented in
docs/policy-exceptions.md and docs/security.md. Skips are the tools' own annotations on the objects.

    python ci/policy.py                      # every chart, every profile
    python ci/policy.py --chart eafix-trading --no-checkov
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

import yaml  # noqa: E402

from eafix.platform import custom_resources  # noqa: E402
from eafix.platform.policy import (  # noqa: E402
    checkov,
    exemptions,
    flow_matrix,
    format_table,
    k8s_validate,
    kube_linter,
    pod_security,
    polaris,
)
from eafix.platform.policy._k8s import Finding  # noqa: E402
from eafix.platform.profiles import CHARTS, profiles  # noqa: E402
from eafix.platform.render import DEFAULT_NAMESPACE, DEFAULT_RELEASE, RenderError, render  # noqa: E402

KUBE_VERSIONS = [f"1.{minor}" for minor in range(29, 38)]
TOOLS = ("kube-linter", "polaris", "kubernetes-validate", "custom-resources", "pod-security", "flow-matrix", "checkov")
DOCS = (REPO / "docs" / "policy-exceptions.md", REPO / "docs" / "security.md")


def charts() -> list[str]:
    """The installable charts (a library chart such as eafix-common renders nothing by itself)."""
    return sorted(p.parent.name for p in CHARTS.glob("*/Chart.yaml")
                  if "type: library" not in p.read_text())


def offline_checks(objects: list[dict]) -> list[Finding]:
    return (
        kube_linter.lint(objects)
        + polaris.audit(objects)
        + k8s_validate.check(objects, KUBE_VERSIONS)
        + custom_resources.check(objects)
        + pod_security.check(objects)
        + flow_matrix.check(objects, DEFAULT_NAMESPACE, DEFAULT_RELEASE)
    )


def run_checkov(streams: dict[str, str]) -> dict[str, checkov.CheckovReport]:
    """One checkov run over every render (a file each); the report of each render."""
    exe = checkov.find_checkov()
    with tempfile.TemporaryDirectory(prefix="eafix-policy-") as tmp:
        files = {}
        for i, (key, text) in enumerate(sorted(streams.items())):
            path = Path(tmp) / f"render{i:02d}.yaml"
            path.write_text(text)
            files[path.name] = key
        proc = subprocess.run(
            [str(exe), "--directory", tmp, *checkov.BASE_ARGS], capture_output=True, text=True, check=False, cwd=tmp
        )
    if proc.returncode not in (0, 1):
        raise checkov.CheckovError(f"checkov exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    doc = checkov._load_json(proc.stdout)
    reports = doc if isinstance(doc, list) else [doc]
    by_file: dict[str, dict] = defaultdict(lambda: {"failed_checks": [], "skipped_checks": []})
    for rep in reports:
        if rep.get("check_type") not in (None, "kubernetes"):
            continue
        for bucket in ("failed_checks", "skipped_checks"):
            for result in (rep.get("results") or {}).get(bucket) or []:
                by_file[Path(result.get("file_path", "")).name][bucket].append(result)
    out = {}
    for name, key in files.items():
        doc = {"check_type": "kubernetes", "results": by_file[name], "summary": {}}
        out[key] = checkov.parse_report(doc, checkov.document_locator(streams[key]))
    return out


def documented(checks: set[tuple[str, str]]) -> list[str]:
    """Exemptions whose check is missing from either document."""
    texts = {d.name: d.read_text() if d.exists() else "" for d in DOCS}
    return [
        f"{tool} {check} is not documented in {name}"
        for tool, check in sorted(checks)
        for name, text in texts.items()
        if f"`{check}`" not in text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", action="append", choices=charts(), help="repeatable; default every chart")
    parser.add_argument("--no-checkov", action="store_true", help="skip checkov (the gate itself never does)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    problem = custom_resources.validator_problem()
    if problem:  # the gate does not run without the operator-schema validator
        print(f"policy: {problem}", file=sys.stderr)
        return 2

    results: dict[str, list[Finding]] = {}
    skips: dict[str, list] = {}
    streams: dict[str, str] = {}
    for chart in args.chart or charts():
        for profile in profiles(chart):
            try:
                r = render(profile.chart_dir, profile.values_files)
            except RenderError as exc:
                results[profile.id] = [Finding("render", "render", "Chart", chart, str(exc).splitlines()[0])]
                skips[profile.id] = []
                continue
            results[profile.id] = offline_checks(r.objects)
            skips[profile.id] = exemptions(r.objects)
            streams[profile.id] = yaml.safe_dump_all(r.objects, sort_keys=False)

    if not args.no_checkov and streams:
        for key, report in run_checkov(streams).items():
            results[key] += report.failed

    failed = False
    every_skip: set[tuple[str, str]] = set()
    for key in results:
        found = results[key]
        counts = defaultdict(int)
        for f in found:
            counts[f.tool] += 1
        skip_counts = defaultdict(int)
        for s in skips[key]:
            skip_counts[s.tool] += 1
            every_skip.add((s.tool, s.check))
        print(f"== {key}")
        print(f"   {'TOOL':<20} {'FINDINGS':>8} {'SKIPS':>6}")
        for tool in TOOLS + tuple(sorted(set(counts) - set(TOOLS))):
            if tool == "checkov" and args.no_checkov:
                print(f"   {tool:<20} {'(off)':>8}")
                continue
            print(f"   {tool:<20} {counts[tool]:>8} {skip_counts.get(tool, 0):>6}")
        if found:
            print(format_table(found))
            failed = True
    undocumented = documented(every_skip)
    for line in undocumented:
        print(f"policy: {line}", file=sys.stderr)
    failed |= bool(undocumented)
    total = sum(len(f) for f in results.values())
    print(
        f"policy: {len(results)} render(s), {total} finding(s), {len(every_skip)} documented skip kind(s), "
        f"{time.monotonic() - start:.0f} s"
    )
    print(json.dumps({"renders": len(results), "findings": total}), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
