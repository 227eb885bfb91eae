"""The `eafix` CLI: openapi, serve (in a real process), check-ready, the optional charts command."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from eafix import __version__, cli, services
from eafix.runtime.app import create_app
from eafix.runtime.settings import Settings
from service.asgi import served
from service.servers import STARTUP_LIMIT, free_port


def test_openapi_prints_the_document(capsys, monkeypatch):
    monkeypatch.setenv("SERVICE_REDIS_URL", "not a url")  # openapi reads no settings
    assert cli.main(["openapi", "execution-engine"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["info"] == {
        "title": "execution-engine", "version": __version__,
        "description": services.get("execution-engine").role,
    }
    assert {"/healthz", "/readyz", "/metrics"} <= set(document["paths"])


@pytest.mark.parametrize("command", ["openapi", "serve"])
def test_unknown_service_lists_the_valid_ones(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "risk-mgr"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown service 'risk-mgr'" in err
    assert all(name in err for name in services.NAMES)


def test_serve_stops_on_a_bad_setting_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("SERVICE_PORT", "eighty")
    assert cli.main(["serve", "reporter"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("eafix serve reporter: SERVICE_PORT: ")


def test_serve_stops_on_a_missing_backend(capsys):
    assert cli.main(["serve", "data-ingestor"]) == 2
    assert "SERVICE_REDIS_URL: missing" in capsys.readouterr().err


def test_serve_needs_a_service(capsys):
    assert cli.main(["serve"]) == 2
    assert "EAFIX_SERVICE" in capsys.readouterr().err


def test_serve_takes_the_service_from_eafix_service(monkeypatch):
    monkeypatch.setenv("EAFIX_SERVICE", "reporter")
    args = cli.build_parser().parse_args(["serve"])
    assert args.service == services.get("reporter")


def commands(parser: argparse.ArgumentParser) -> set[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def test_charts_command_is_delegated_when_available(monkeypatch):
    assert {"serve", "openapi", "check-ready"} <= commands(cli.build_parser())
    try:
        import eafix.platform.cli  # noqa: F401
    except ImportError:
        available = False
    else:
        available = True
    assert ("charts" in commands(cli.build_parser())) is available
    monkeypatch.setitem(sys.modules, "eafix.platform.cli", None)  # makes the import fail
    assert "charts" not in commands(cli.build_parser())
    assert cli.main(["openapi", "reporter"]) == 0  # the rest of the CLI is unaffected


# --- check-ready against real HTTP servers --------------------------------------------------------

@pytest.fixture(scope="module")
def ready_url():
    spec = services.get("reporter")
    with served(create_app(spec, Settings(name=spec.name))) as url:  # no backends: always ready
        yield url


@pytest.fixture(scope="module")
def unready_url():
    spec = services.get("data-ingestor")
    settings = Settings(name=spec.name, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with served(create_app(spec, settings)) as url:
        yield url


def test_check_ready_all_ok(capsys, ready_url):
    urls = [f"{ready_url}/readyz", f"{ready_url}/healthz"]
    assert cli.main(["check-ready", *urls]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("OK") and line.endswith(" 200") for line in lines)


def test_check_ready_fails_on_503(capsys, ready_url, unready_url):
    assert cli.main(["check-ready", f"{ready_url}/readyz", f"{unready_url}/readyz"]) == 1
    ok, failed = capsys.readouterr().out.splitlines()
    assert ok.startswith("OK")
    assert failed.startswith(f"FAIL {unready_url}/readyz 503")
    assert "redis" in failed


def test_check_ready_fails_on_404_and_on_a_closed_port(capsys, ready_url):
    closed = f"http://127.0.0.1:{free_port()}/readyz"
    assert cli.main(["check-ready", "--timeout", "2", f"{ready_url}/nope", closed]) == 1
    not_found, refused = capsys.readouterr().out.splitlines()
    assert not_found.startswith(f"FAIL {ready_url}/nope 404")
    assert refused.startswith(f"FAIL {closed} ConnectError")


# --- eafix serve as a real process ------------------------------------------------------------

def test_serve_runs_until_sigterm(tmp_path, redis_server, migrated_db):
    """`eafix serve` as the container runs it: settings from env and secret files, JSON logs,
    ready against real servers (a migrated database: risk-manager restores its portfolio at start),
    and a graceful stop (lifespan shutdown) on SIGTERM."""
    postgres_server = migrated_db
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "SERVICE_POSTGRES_USER").write_text(postgres_server.user + "\n")
    (secrets / "SERVICE_POSTGRES_PASSWORD").write_text(postgres_server.password + "\n")
    if redis_server.password:
        (secrets / "SERVICE_REDIS_PASSWORD").write_text(redis_server.password + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env.update({
        "SERVICE_NAME": "risk-manager", "SERVICE_PORT": str(port), "SERVICE_LOG_LEVEL": "INFO",
        "SERVICE_SECRETS_DIR": str(secrets), "SERVICE_REDIS_URL": redis_server.url,
        "SERVICE_POSTGRES_URL": postgres_server.url, "SERVICE_EXECUTION_ENGINE_URL": "http://127.0.0.1:1",
    })
    proc = subprocess.Popen([sys.executable, "-m", "eafix", "serve", "risk-manager"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status, deadline = None, time.monotonic() + STARTUP_LIMIT
        while status != 200 and proc.poll() is None and time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=STARTUP_LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # uvicorn finishes its graceful shutdown, then re-raises SIGTERM to exit the conventional way
    assert proc.returncode in (0, -signal.SIGTERM)
    records = [json.loads(line) for line in err.splitlines()]
    assert all(r["service"] == "risk-manager" for r in records)
    messages = [r["msg"] for r in records]
    assert "started" in messages and "stopped" in messages
    started = next(r for r in records if r["msg"] == "started")
    assert started["peers"] == {"execution-engine": "http://127.0.0.1:1"}
    assert postgres_server.password not in err
    assert not redis_server.password or redis_server.password not in err


def test_backtest_starts_without_the_service_and_tooling_libraries(tmp_path):
    # `eafix backtest` builds only its own parser and the in-memory parts: redis, psycopg, httpx and
    # the `up`/chart tooling stay unimported (they were ~0.3 s of CPU of every start; docs/performance.md)
    script = (
        "import sys\n"
        "from eafix import cli\n"
        f"cli.main(['sample-data', '--out', {str(tmp_path / 'bars.csv')!r}, '--bars', '30'])\n"
        f"code = cli.main(['backtest', '--data', {str(tmp_path / 'bars.csv')!r}, '--out', {str(tmp_path)!r},"
        " '--format', 'json'])\n"
        "heavy = ['redis', 'psycopg', 'psycopg_pool', 'httpx', 'eafix.local.up', 'eafix.platform.cli']\n"
        "print(code, [m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"
    assert (tmp_path / "report.json").exists() and (tmp_path / "trades.csv").exists()
