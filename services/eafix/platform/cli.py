"""`eafix charts ...`: render, validate and summarise the platform charts offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eafix.platform.policy import Finding, format_table, run_all
from eafix.platform.profiles import ENVIRONMENTS, env_overlay, profiles
from eafix.platform.render import RenderError, render

CHART_NAMES = ("eafix-trading", "eafix-infra", "eafix-apps")
# Kubernetes minor versions the built-in objects must validate against (strict).
KUBE_VERSIONS = tuple(f"1.{minor}" for minor in range(29, 38))


def _checks(objects: list[dict]) -> bool:
    """Print the policy line of one render; True when something failed."""
    from eafix.platform import custom_resources

    findings = run_all(objects, kubernetes_versions=KUBE_VERSIONS)
    try:
        findings += custom_resources.check(objects)
    except custom_resources.CRDValidatorError as exc:  # no Node / packages: a failure, never a pass
        findings.append(Finding(custom_resources.TOOL, "validator", "-", "-", str(exc)))
    status = "no findings" if not findings else f"{len(findings)} finding(s)"
    print(f"   checks  : {status} (kubernetes-validate --strict {KUBE_VERSIONS[0]}-{KUBE_VERSIONS[-1]},"
          " kube-linter and Polaris defaults, custom resources against their operators' schemas;"
          " exemptions in docs/policy-exceptions.md)")
    if findings:
        print(format_table(findings), file=sys.stderr)
    return bool(findings)


def _summary(args: argparse.Namespace) -> int:
    from eafix.platform.summary import budget, describe, describe_infra, describe_platform, infra_budget, infra_values

    failed = False
    for env in args.env or ENVIRONMENTS:
        rendered = {}
        for chart in ("eafix-trading", "eafix-infra", "eafix-apps"):
            try:
                rendered[chart] = render(profiles(chart)[0].chart_dir, [env_overlay(chart, env)])
            except RenderError as exc:
                print(f"== {env}: {chart} FAILED TO RENDER\n{exc}", file=sys.stderr)
                failed = True
        if "eafix-trading" in rendered:
            print(describe(env, rendered["eafix-trading"]))
            failed |= _checks(rendered["eafix-trading"].objects)
        if "eafix-infra" in rendered:
            values = infra_values(env)
            print(describe_infra(env, rendered["eafix-infra"], values))
            failed |= _checks(rendered["eafix-infra"].objects)
        if "eafix-apps" in rendered:
            apps = rendered["eafix-apps"].select(kind="Application")
            print(f"== {env}: eafix-apps (Argo CD)")
            for a in apps:
                wave = a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
                print(f"   {a['metadata']['name']}: wave {wave},"
                      f" {a['spec']['source']['path']} with {', '.join(a['spec']['source']['helm']['valueFiles'])}")
            failed |= _checks(rendered["eafix-apps"].objects)
        if {"eafix-trading", "eafix-infra"} <= set(rendered):
            print(describe_platform(env, budget(rendered["eafix-trading"]), infra_budget(infra_values(env))))
        print()
    return 1 if failed else 0


def _render(args: argparse.Namespace) -> int:
    chart = profiles(args.chart)[0].chart_dir
    files = [env_overlay(args.chart, args.env)] + [Path(f) for f in args.values]
    try:
        r = render(chart, files, release=args.release, namespace=args.namespace)
    except RenderError as exc:
        print(exc, file=sys.stderr)
        return 1
    text = r.text()
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _manifests(args: argparse.Namespace) -> int:
    from eafix.platform.manifests import ManifestError, write

    out = Path(args.out)
    try:
        lay = write(args.env, out, fetch=args.fetch_dependencies)
    except (RenderError, ManifestError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for path, objs in sorted(lay.files.items()):
        print(f"{out / path}: {len(objs)} object(s)")
    for note in lay.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def add_parser(subparsers) -> None:
    charts = subparsers.add_parser("charts", help="render, validate and summarise the Helm charts offline")
    sub = charts.add_subparsers(dest="charts_command", required=True)

    summary = sub.add_parser("summary", help="objects, images and resource totals per environment")
    summary.add_argument("--env", action="append", choices=ENVIRONMENTS, help="repeatable; default all")
    summary.set_defaults(func=_summary)

    rend = sub.add_parser("render", help="print the rendered manifests of one environment")
    rend.add_argument("--chart", choices=CHART_NAMES, default="eafix-trading")
    rend.add_argument("--env", choices=ENVIRONMENTS, default="prod")
    rend.add_argument("-f", "--values", action="append", default=[], help="extra values file (repeatable)")
    rend.add_argument("--release", default="eafix")
    rend.add_argument("--namespace", default="eafix-trading")
    rend.add_argument("--out", help="write to this file instead of stdout")
    rend.set_defaults(func=_render)

    man = sub.add_parser("manifests", help="write an environment as plain manifests in the deployment docs' layout")
    man.add_argument("--env", choices=ENVIRONMENTS, required=True)
    man.add_argument("--out", default="deploy/kubernetes",
                     help="output directory (replaced; default deploy/kubernetes)")
    man.add_argument("--fetch-dependencies", action="store_true",
                     help="fetch missing chart dependencies first (needs registry access)")
    man.set_defaults(func=_manifests)
