"""eafix-infra's backup scripts, run for real: the text of the rendered `eafix-backup-scripts`
ConfigMap, with the environment the rendered CronJob gives each container, under `sh`, and stub
pg_dump / redis-cli / rclone on PATH that record how they were called and write what the real tool
would. Only the paths the pod mounts (/backup and the secret directories) point into tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import pod_spec, render_profile

DAY = 86400


def stub(bin_dir: Path, name: str, body: str) -> None:
    """An executable `name` that appends its argv to $STUB_LOG/<name> (one line, arguments ended by
    the unit separator), then runs `body`."""
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\nprintf "%s\\037" "$@" >> "$STUB_LOG/{name}"\necho >> "$STUB_LOG/{name}"\n{body}\n')
    path.chmod(0o755)


def calls(log_dir: Path, name: str) -> list[list[str]]:
    log = log_dir / name
    return [line.split("\x1f")[:-1] for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def prod():
    return render_profile("eafix-infra:env-prod")  # both dumps, uploaded to the object store


def script(r, name: str) -> str:
    return r.one("ConfigMap", "eafix-backup-scripts")["data"][name]


def container_env(r, cronjob: str, container: str) -> dict[str, str]:
    spec = pod_spec(r.one("CronJob", cronjob))
    c = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == container)
    return {e["name"]: e["value"] for e in c["env"]}


@pytest.fixture
def sandbox(tmp_path):
    """(run, paths): run(script_text, args, env) -> CompletedProcess, with stubs first on PATH."""
    bin_dir, logs, backup, secrets = (tmp_path / d for d in ("bin", "logs", "backup", "secrets"))
    for d in (bin_dir, logs, backup, secrets):
        d.mkdir()
    (secrets / "username").write_text("eafix")
    (secrets / "password").write_text("s3cret")
    # the real tools write the output file named by their option; the stubs write a marker instead
    stub(bin_dir, "pg_dump", 'for a in "$@"; do\n'
                             '  case "$a" in --file=*) echo "PGDMP $PGPASSWORD" > "${a#--file=}";; esac\n'
                             'done\n'
                             '[ -z "${STUB_FAIL:-}" ] || exit 3')
    stub(bin_dir, "redis-cli", 'while [ $# -gt 0 ]; do\n'
                               '  [ "$1" = --rdb ] && echo "REDIS0011 $REDISCLI_AUTH" > "$2"; shift\n'
                               'done')
    stub(bin_dir, "rclone", 'env | grep "^RCLONE_CONFIG_STORE_" | sort >> "$STUB_LOG/rclone.env"')

    def run(text: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
        path = tmp_path / "script.sh"
        path.write_text(text)
        full = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(logs), "BACKUP_DIR": str(backup),
                "SECRETS_DIR": str(secrets), "TMPDIR": str(tmp_path), **env}
        return subprocess.run(["sh", str(path), *args], env=full, capture_output=True, text=True, timeout=60)

    return run, {"logs": logs, "backup": backup, "secrets": secrets, "tmp": tmp_path}


def _age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def test_postgres_dump_writes_a_complete_file_and_prunes_past_retention(prod, sandbox):
    run, p = sandbox
    env = container_env(prod, "eafix-backup-postgres", "dump-postgres")
    out = p["backup"] / "postgres"
    out.mkdir()
    old, recent = out / "eafix_trading-20200101T020000Z.dump", out / "eafix_trading-yesterday.dump"
    old.write_text("old")
    recent.write_text("recent")
    _age(old, int(env["RETENTION_DAYS"]) + 1)
    _age(recent, 1)

    proc = run(script(prod, "dump.sh"), ["postgres"], env)

    assert proc.returncode == 0, proc.stderr
    ((args),) = calls(p["logs"], "pg_dump")
    assert args[:3] == ["--format=custom", "--no-password", "--username=eafix"]  # the user from its file
    target = Path(args[3].removeprefix("--file="))
    assert target.name.endswith(".dump.partial") and target.parent == out
    final = target.with_suffix("")  # renamed once complete
    assert final.read_text() == "PGDMP s3cret\n" and not target.exists()  # password reached pg_dump's env
    assert final.name.startswith(f"{env['PGDATABASE']}-")
    assert not old.exists() and recent.exists()
    assert f"wrote {final}" in proc.stdout


def test_a_failed_dump_leaves_no_finished_file_and_prunes_nothing(prod, sandbox):
    run, p = sandbox
    env = container_env(prod, "eafix-backup-postgres", "dump-postgres")
    old = p["backup"] / "postgres" / "eafix_trading-old.dump"
    old.parent.mkdir()
    old.write_text("old")
    _age(old, 30)

    proc = run(script(prod, "dump.sh"), ["postgres"], {**env, "STUB_FAIL": "1"})

    assert proc.returncode != 0
    assert [f.name for f in old.parent.iterdir() if f.suffix == ".dump"] == [old.name]  # kept: the run failed


def test_redis_snapshot_uses_the_password_file_and_the_rendered_host(prod, sandbox):
    run, p = sandbox
    env = container_env(prod, "eafix-backup-redis", "dump-redis")

    proc = run(script(prod, "dump.sh"), ["redis"], env)

    assert proc.returncode == 0, proc.stderr
    ((args),) = calls(p["logs"], "redis-cli")
    assert args[:5] == ["-h", env["REDIS_HOST"], "-p", env["REDIS_PORT"], "--no-auth-warning"]
    (snapshot,) = (p["backup"] / "redis").iterdir()
    assert snapshot.suffix == ".rdb" and snapshot.read_text() == "REDIS0011 s3cret\n"
    assert args[5:] == ["--rdb", f"{snapshot}.partial"]


def test_an_unknown_kind_is_refused(prod, sandbox):
    run, _ = sandbox
    proc = run(script(prod, "dump.sh"), ["mysql"], {"RETENTION_DAYS": "7"})
    assert proc.returncode == 2 and "unknown kind 'mysql'" in proc.stderr


@pytest.mark.parametrize("with_keys", [True, False], ids=["access-keys", "workload-identity"])
def test_upload_copies_finished_dumps_and_expires_remote_ones(prod, sandbox, with_keys):
    run, p = sandbox
    env = container_env(prod, "eafix-backup-postgres", "upload")
    keys = p["tmp"] / "objectstore"
    keys.mkdir()
    if with_keys:
        (keys / "AWS_ACCESS_KEY_ID").write_text("AKIDEXAMPLE")
        (keys / "AWS_SECRET_ACCESS_KEY").write_text("wJalrEXAMPLE")

    proc = run(script(prod, "upload.sh"), [], {**env, "OBJECTSTORE_SECRETS_DIR": str(keys)})

    assert proc.returncode == 0, proc.stderr
    remote = f"store:{env['STORE_BUCKET']}/{env['STORE_PREFIX']}/postgres"
    assert calls(p["logs"], "rclone") == [
        ["copy", str(p["backup"] / "postgres"), remote, "--exclude", "*.partial"],
        ["delete", remote, "--min-age", f"{env['RETENTION_DAYS']}d"],
    ]
    seen = dict(line.split("=", 1) for line in (p["logs"] / "rclone.env").read_text().splitlines())
    assert seen["RCLONE_CONFIG_STORE_TYPE"] == env["STORE_TYPE"]
    if with_keys:
        assert seen["RCLONE_CONFIG_STORE_ACCESS_KEY_ID"] == "AKIDEXAMPLE"
        assert "RCLONE_CONFIG_STORE_ENV_AUTH" not in seen
    else:
        assert seen["RCLONE_CONFIG_STORE_ENV_AUTH"] == "true"
        assert "RCLONE_CONFIG_STORE_ACCESS_KEY_ID" not in seen


def test_the_configmap_holds_the_chart_files_verbatim(prod):
    files = Path(__file__).resolve().parents[2] / "charts" / "eafix-infra" / "files"
    for name in ("dump.sh", "upload.sh"):
        assert script(prod, name) == (files / name).read_text()
