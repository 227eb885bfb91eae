"""`eafix migrate [--dry-run] [--dir DIR]`: apply the pending migrations (the chart's hook Job runs it).

Connection settings are read exactly as a service reads them (`SERVICE_POSTGRES_URL`, the user and
password from `SERVICE_POSTGRES_USER`/`_PASSWORD`, their `_FILE` variables or the mounted secret
files), through `MigrateSettings`, which needs no service name. Output: one line per migration
applied (or pending, with --dry-run) and a summary line on stdout; on failure one line on stderr
and a non-zero exit (2 for settings, 1 for anything else).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, field_validator

from eafix.runtime.settings import Settings, SettingsError, env_name, postgres_conninfo, postgres_credentials, redact
from eafix.runtime.store import migrations

EXIT_FAILED = 1
EXIT_SETTINGS = 2


class MigrateSettings(Settings):
    """Settings of `eafix migrate`: a service's settings without a service identity."""

    name: str = "eafix-migrate"
    port: int | None = Field(default=None, ge=1, le=65535)  # type: ignore[assignment]  # serves nothing

    @field_validator("name")
    @classmethod
    def _known_service(cls, value: str) -> str:  # replaces the catalogue check of Settings
        return value


def load_migrate_settings() -> MigrateSettings:
    settings = MigrateSettings(name="eafix-migrate")
    if not settings.postgres_url:
        raise SettingsError(f"{env_name('postgres_url')}: missing; set it to postgresql://host:port/database")
    if not settings.postgres_user and not conninfo_to_dict(settings.postgres_url).get("user"):
        raise SettingsError(f"{env_name('postgres_user')}: missing; set it, {env_name('postgres_user')}_FILE, "
                            f"or a user in {env_name('postgres_url')}")
    return settings


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_migrate_settings()
    except SettingsError as exc:
        print(f"eafix migrate: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    url = postgres_conninfo(settings)
    assert url is not None  # checked by load_migrate_settings

    def waiting(message: str) -> None:
        print(message, flush=True)

    try:
        result = asyncio.run(migrations.run(url, postgres_credentials(settings), directory=args.dir,
                                            dry_run=args.dry_run, on_wait=waiting))
    except migrations.MigrationError as exc:
        print(f"eafix migrate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.Error as exc:
        print(f"eafix migrate: PostgreSQL at {redact(url)}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    verb = "pending" if result.dry_run else "applied"
    for m in result.applied:
        print(f"{verb} {m.ident} (sha256 {m.checksum[:12]})")
    for a in result.unknown:
        print(f"note: {a.ident} is recorded in the database but not in this release (applied by a newer one?)")
    count = len(result.applied)
    done = len(result.already_applied)
    if result.dry_run:
        print(f"dry run: {count} pending, {done} already applied; nothing was changed")
    elif count:
        print(f"{count} migration(s) applied, {done} already applied")
    else:
        print(f"nothing to apply: {done} migration(s) already applied")
    return 0
