"""`eafix ...`: the one entry point of every image (ENTRYPOINT ["eafix"]).

  eafix serve [SERVICE]          run the service: HTTP server, and for the pipeline services their
                                 bus consumers and timers (eafix.<module>.service); port from settings
                                 or catalogue; SERVICE defaults to $EAFIX_SERVICE, which the image sets
  eafix openapi SERVICE          print the OpenAPI document, business routes included (no Redis/Postgres needed)
  eafix check-ready URL [URL..]  GET each URL; exit 1 unless all answer 200 (helm test hook)
  eafix migrate [--dry-run] [--dir DIR]
                                 apply the pending SQL migrations (pre-install/pre-upgrade hook Job)
  eafix charts ...               chart tooling (eafix.platform.cli), when installed
  eafix status [--gateway URL]   a live release: replicas, readiness, restarts, PDB/HPA, ticks, lag
                                 (eafix.platform.status), when the tooling is installed

Each subcommand sets `func(args) -> exit code`. Heavy imports (FastAPI, uvicorn, httpx) happen
inside the subcommand, so `--help` and `check-ready` in the helm-test pod start quickly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from eafix import __version__, services

EXIT_USAGE = 2  # also what argparse uses for bad arguments


def _service(name: str) -> services.ServiceSpec:
    try:
        return services.get(name)
    except services.UnknownServiceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from eafix.runtime.app import create_app
    from eafix.runtime.logging import configure_logging
    from eafix.runtime.service import build_parts, settings_class
    from eafix.runtime.settings import SettingsError, load_settings

    if args.service is None:
        valid = ", ".join(services.NAMES)
        print(f"eafix serve: name a service or set EAFIX_SERVICE; valid services: {valid}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings(args.service, settings_class(args.service))
        parts = build_parts(args.service, settings)
    except SettingsError as exc:
        print(f"eafix serve {args.service.name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args.service.name, settings.log_level)
    uvicorn.run(
        create_app(args.service, settings, parts),
        host="0.0.0.0",
        port=settings.port,
        log_config=None,  # keep our JSON handler
        access_log=False,  # probes every few seconds; the metrics count requests instead
        server_header=False,
        lifespan="on",  # a failing start-up must stop the process
        timeout_graceful_shutdown=20,  # inside the chart's 30 s terminationGracePeriodSeconds
    )
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from eafix.runtime.app import create_app
    from eafix.runtime.service import build_parts, settings_class

    settings = settings_class(args.service).defaults(args.service)  # catalogue values; no environment
    app = create_app(args.service, settings, build_parts(args.service, settings))
    json.dump(app.openapi(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _check_ready(args: argparse.Namespace) -> int:
    import httpx

    failed = False
    with httpx.Client(timeout=args.timeout, follow_redirects=False) as client:
        for url in args.urls:
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                failed = True
                print(f"FAIL {url} {type(exc).__name__}: {exc}")
                continue
            ok = response.status_code == 200
            failed |= not ok
            detail = "" if ok else " " + " ".join(response.text.split())[:300]
            print(f"{'OK  ' if ok else 'FAIL'} {url} {response.status_code}{detail}")
    return 1 if failed else 0


def _migrate(args: argparse.Namespace) -> int:
    from eafix.runtime.store.command import main as migrate_main

    return migrate_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eafix", description="EAFIX trading platform services")
    parser.add_argument("--version", action="version", version=f"eafix {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run a service's HTTP server")
    # argparse runs a string default through `type` too, so a bad EAFIX_SERVICE is a usage error.
    serve.add_argument("service", type=_service, nargs="?", default=os.environ.get("EAFIX_SERVICE") or None,
                       help=f"one of: {', '.join(services.NAMES)} (default: $EAFIX_SERVICE)")
    serve.set_defaults(func=_serve)

    openapi = sub.add_parser("openapi", help="print a service's OpenAPI document as JSON")
    openapi.add_argument("service", type=_service, help=f"one of: {', '.join(services.NAMES)}")
    openapi.set_defaults(func=_openapi)

    check = sub.add_parser("check-ready", help="GET each URL; exit 1 unless every one answers 200")
    check.add_argument("urls", nargs="+", metavar="URL")
    check.add_argument("--timeout", type=float, default=5.0, help="seconds per URL (default 5)")
    check.set_defaults(func=_check_ready)

    migrate = sub.add_parser("migrate", help="apply the pending database migrations",
                             description="Apply the pending SQL migrations in (schema, version) order under "
                                         "an advisory lock; PostgreSQL settings as a service reads them "
                                         "(SERVICE_POSTGRES_URL, credential files).")
    migrate.add_argument("--dry-run", action="store_true", help="list the pending migrations; change nothing")
    migrate.add_argument("--dir", type=Path, default=None, metavar="DIR",
                         help="migrations directory (default: the migrations shipped in the eafix package)")
    migrate.set_defaults(func=_migrate)

    from eafix.backtest.cli import add_parsers as add_backtest_parsers

    add_backtest_parsers(sub)

    from eafix.backtest.optimize_cli import add_parser as add_optimize_parser

    add_optimize_parser(sub)

    from eafix.local.up import add_parser as add_up_parser

    add_up_parser(sub)

    try:  # chart tooling is optional and owned elsewhere; without it there is no `charts` command
        from eafix.platform.cli import add_parser as add_charts_parser
        from eafix.platform.status import add_parser as add_status_parser
    except ImportError:
        pass
    else:
        add_charts_parser(sub)
        add_status_parser(sub)
    return parser


# Subcommands whose parsers come from eafix.backtest.cli alone: for these `main` builds only that
# parser, so `eafix backtest` does not import the `up`/chart tooling (httpx, redis, jsonschema: ~0.9 s).
_BACKTEST_COMMANDS = ("backtest", "sample-data")


def _backtest_parser() -> argparse.ArgumentParser:
    from eafix.backtest.cli import add_parsers as add_backtest_parsers

    parser = argparse.ArgumentParser(prog="eafix", description="EAFIX trading platform services")
    add_backtest_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    light = bool(words) and words[0] in _BACKTEST_COMMANDS
    args = (_backtest_parser() if light else build_parser()).parse_args(words)
    return args.func(args)
