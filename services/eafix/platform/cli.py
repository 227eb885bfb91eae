"""`eafix charts ...`: render, validate and summarise the platform charts offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eafix.platform.policy import format_table, run_all
from eafix.platform.profiles import ENVIRONMENTS, env_overlay, profiles
from eafix.platform.render import RenderError, render

# Kubernetes minor versions the built-in objects must validate against (strict).
KUBE_VERSIONS = tuple(f"1.{minor}" for minor in range(29, 38))


def _summary(args: argparse.Namespace) -> int:
    from eafix.platform.summary import describe

    failed = False
    chart = profiles("eafix-trading")[0].chart_dir
    for env in args.env or ENVIRONMENTS:
        try:
            r = render(chart, [env_overlay("eafix-trading", env)])
        except RenderError as exc:
            print(f"== {env}: eafix-trading FAILED TO RENDER\n{exc}", file=sys.stderr)
            failed = True
            continue
        print(describe(env, r))
        findings = run_all(r.objects, kubernetes_versions=KUBE_VERSIONS)
        status = "no findings" if not findings else f"{len(findings)} finding(s)"
        print(f"   checks  : {status} (kubernetes-validate --strict {KUBE_VERSIONS[0]}-{KUBE_VERSIONS[-1]},"
              " kube-linter and Polaris defaults; exemptions in docs/policy-exceptions.md)")
        if findings:
            print(format_table(findings), file=sys.stderr)
        failed |= bool(findings)
        print()
    return 1 if failed else 0


def _render(args: argparse.Namespace) -> int:
    chart = profiles("eafix-trading")[0].chart_dir
    files = [env_overlay("eafix-trading", args.env)] + [Path(f) for f in args.values]
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


def add_parser(subparsers) -> None:
    charts = subparsers.add_parser("charts", help="render, validate and summarise the Helm charts offline")
    sub = charts.add_subparsers(dest="charts_command", required=True)

    summary = sub.add_parser("summary", help="objects, images and resource totals per environment")
    summary.add_argument("--env", action="append", choices=ENVIRONMENTS, help="repeatable; default all")
    summary.set_defaults(func=_summary)

    rend = sub.add_parser("render", help="print the rendered manifests of one environment")
    rend.add_argument("--env", choices=ENVIRONMENTS, default="prod")
    rend.add_argument("-f", "--values", action="append", default=[], help="extra values file (repeatable)")
    rend.add_argument("--release", default="eafix")
    rend.add_argument("--namespace", default="eafix-trading")
    rend.add_argument("--out", help="write to this file instead of stdout")
    rend.set_defaults(func=_render)
