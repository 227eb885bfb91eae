"""`eafix charts ...`: render, validate and summarise the platform charts offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eafix.platform.profiles import ENVIRONMENTS, env_overlay, profiles
from eafix.platform.render import RenderError, render

# Kubernetes minor versions the built-in objects must validate against (strict).
KUBE_VERSIONS = tuple(f"1.{minor}" for minor in range(29, 38))


def validation_errors(objects: list[dict], versions=KUBE_VERSIONS) -> list[str]:
    """Strict schema errors of every built-in object (custom resources are checked elsewhere)."""
    import kubernetes_validate

    errors = []
    for obj in objects:
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        if "." in group and not group.endswith(".k8s.io"):
            continue  # a custom resource (monitoring.coreos.com, networking.istio.io, ...)
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): {exc.message}")
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{obj['kind']}/{obj['metadata']['name']}: no schema in Kubernetes {version}")
    return errors


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
        errors = validation_errors(r.objects, (KUBE_VERSIONS[0], KUBE_VERSIONS[-1]))
        status = "valid" if not errors else f"{len(errors)} schema error(s)"
        print(f"   schema  : {status} (kubernetes-validate --strict, {KUBE_VERSIONS[0]} and {KUBE_VERSIONS[-1]})")
        for e in errors:
            print(f"     - {e}", file=sys.stderr)
        failed |= bool(errors)
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
