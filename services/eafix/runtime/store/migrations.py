"""Versioned SQL migrations, one directory per PostgreSQL schema.

Layout (package data of `eafix`; `default_directory()`):

    services/eafix/migrations/<schema>/<NNNN>_<snake_name>.sql     e.g. orders/0001_create_orders.sql

Rules checked before anything touches the database (`discover`), each failure naming the file:
  * schema directories are lower-case identifiers, not `public`, `pg_*` or `information_schema`;
  * file names are `NNNN_snake_name.sql`; versions start at 0001 and have no gaps or duplicates;
  * a file references only its own schema: no `<other schema>.` or `public.` qualifier, no
    CREATE/ALTER/DROP SCHEMA of another schema, no `search_path` (the runner sets it), no
    transaction control (the runner owns the transaction); version 0001 creates the schema with
    `CREATE SCHEMA IF NOT EXISTS <schema>`. The check is textual (comments and string literals
    are ignored), not a SQL parser.

`migrate()` takes a session-level `pg_advisory_lock(MIGRATION_LOCK_KEY)`, so concurrent runners
(two hook Jobs, a Job and a developer) run one after the other, and the later one finds nothing to
do. Under the lock it verifies the checksums of the applied migrations (an edited applied file is
refused, naming it), then applies every pending file in (schema, version) order inside ONE
transaction with `SET LOCAL search_path TO <schema>`, recording each in
`public.eafix_schema_migrations(schema_name, version, name, checksum, applied_at)`. A failing file
rolls the whole run back: nothing is applied or recorded, and the error names the file and line.
Re-running is a no-op. Rows of schemas that have no directory here, and versions newer than the
newest file (a database migrated by a newer release), are reported, not treated as errors.

The checksum is the SHA-256 of the file's UTF-8 text with CRLF line ends normalised to LF, so a
Windows checkout does not count as an edit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

import eafix

MIGRATIONS_TABLE = "public.eafix_schema_migrations"
# pg_advisory_lock key shared by every runner of every release: b"eafixmig" as a big-endian bigint.
MIGRATION_LOCK_KEY = int.from_bytes(b"eafixmig", "big")
# Schemas of the storage convention; referencing one of them from another schema's file is refused
# even before its directory exists.
CONVENTION_SCHEMAS = frozenset({"orders", "trades", "risk", "calendar", "reentry", "compliance", "reports",
                                "gateway"})

FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED_SCHEMAS = frozenset({"public", "information_schema"})

_CREATE_TABLE = sql.SQL("""
CREATE TABLE IF NOT EXISTS public.eafix_schema_migrations (
    schema_name text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, version)
)""")


class MigrationError(Exception):
    """A migration problem; str() is one line that names the file concerned."""


@dataclass(frozen=True)
class Migration:
    schema: str
    version: int
    name: str
    path: Path
    sql: str
    checksum: str  # sha256 hex of the normalised text

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def ident(self) -> str:
        """`orders/0001_create_orders.sql`: how messages name the file."""
        return f"{self.schema}/{self.filename}"


@dataclass(frozen=True)
class AppliedMigration:
    schema: str
    version: int
    name: str
    checksum: str
    applied_at: datetime

    @property
    def ident(self) -> str:
        return f"{self.schema}/{self.version:04d}_{self.name}.sql"


@dataclass
class MigrationResult:
    applied: list[Migration] = field(default_factory=list)  # by this run (dry run: would be)
    already_applied: list[Migration] = field(default_factory=list)
    unknown: list[AppliedMigration] = field(default_factory=list)  # recorded, newer than any file here
    dry_run: bool = False
    waited_for_lock: bool = False


# --- discovery and static checks ------------------------------------------------------------------

def default_directory() -> Path:
    """`migrations/` inside the installed `eafix` package (package data)."""
    return Path(eafix.__file__).resolve().parent / "migrations"


def checksum(text: str) -> str:
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def discover(directory: Path | None = None, *, missing_ok: bool = False) -> list[Migration]:
    """Every migration under `directory`, validated, ordered by (schema, version)."""
    directory = default_directory() if directory is None else Path(directory)
    if not directory.is_dir():
        if missing_ok:
            return []
        raise MigrationError(f"{directory}: no such migrations directory (is the package data installed?)")
    schema_dirs = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    schemas = [d.name for d in schema_dirs]
    for d in schema_dirs:
        if not SCHEMA_RE.match(d.name) or d.name in RESERVED_SCHEMAS or d.name.startswith("pg_"):
            raise MigrationError(f"{d}: not a valid schema directory name (lower-case identifier, "
                                 "not public, pg_* or information_schema)")
    migrations: list[Migration] = []
    for d in schema_dirs:
        migrations.extend(_discover_schema(d, frozenset(schemas) | CONVENTION_SCHEMAS))
    return migrations


def _discover_schema(directory: Path, known_schemas: frozenset[str]) -> list[Migration]:
    schema = directory.name
    found: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name.upper().startswith("README"):
            continue
        ident = f"{schema}/{path.name}"
        match = FILE_RE.match(path.name)
        if not match or not path.is_file():
            raise MigrationError(f"{ident}: not a migration file name (expected NNNN_snake_case_name.sql)")
        version = int(match["version"])
        if version == 0:
            raise MigrationError(f"{ident}: versions start at 0001")
        if version in found:
            raise MigrationError(f"{ident}: version {version:04d} is also used by {found[version].ident}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise MigrationError(f"{ident}: not UTF-8 text") from None
        except OSError as exc:
            raise MigrationError(f"{ident}: cannot read: {exc.strerror or exc}") from None
        migration = Migration(schema, version, match["name"], path, text, checksum(text))
        check_references(migration, known_schemas)
        found[version] = migration
    for expected, version in enumerate(sorted(found), start=1):
        if version != expected:
            raise MigrationError(f"{found[version].ident}: version {expected:04d} of schema {schema} is missing "
                                 "(versions must run 0001, 0002, ... without gaps)")
    return [found[v] for v in sorted(found)]


def _block_comment_end(text: str, i: int) -> int:
    """End of the (nested) /* ... */ comment starting at `i`."""
    depth, i, n = 1, i + 2, len(text)
    while i < n and depth:
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _quoted_end(text: str, i: int) -> int:
    """End of the '...' literal or "..." identifier starting at `i`: a doubled quote stays inside, and
    so does a backslash-escaped one in an E'...' literal."""
    quote = text[i]
    escapes = quote == "'" and i > 0 and text[i - 1] in "eE" and (
        i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
    i, n = i + 1, len(text)
    while i < n:
        if (escapes and text[i] == "\\") or text.startswith(quote * 2, i):
            i += 2
        elif text[i] == quote:
            return i + 1
        else:
            i += 1
    return n


def _dollar_tag(text: str, i: int) -> str | None:
    """The $tag$ opening a dollar-quoted body at `i`, if one does."""
    m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", text[i:])
    return m.group(0) if m and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")) else None


def _strip(text: str, *, keep_dollar_bodies: bool) -> str:
    """`text` with comments and string literals blanked (replaced by a space); dollar-quoted bodies
    (function bodies, DO blocks) are kept as code or blanked as well. Quoted identifiers stay (one
    may be a schema qualifier)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif text.startswith("/*", i):
            i = _block_comment_end(text, i)
            out.append(" ")
        elif c == "'":
            i = _quoted_end(text, i)
            out.append(" ")
        elif c == '"':
            end = _quoted_end(text, i)
            out.append(text[i:end])
            i = end
        elif c == "$" and (tag := _dollar_tag(text, i)):
            end = text.find(tag, i + len(tag))
            end = n if end < 0 else end
            body = text[i + len(tag):end]
            out.append(f" {_strip(body, keep_dollar_bodies=True)} " if keep_dollar_bodies else " ")
            i = end + len(tag)
        else:
            out.append(c)
            i += 1
    return "".join(out)


_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIER_RE = re.compile(rf'(?<![A-Za-z0-9_$."])({_IDENT})\s*\.\s*(?=["A-Za-z_*])')
_SCHEMA_DDL_RE = re.compile(
    rf"\b(CREATE|ALTER|DROP)\s+SCHEMA\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?({_IDENT})", re.IGNORECASE)
# Statement-level only: `CREATE FUNCTION ... SET search_path = <own>` (a function option) is fine.
_SEARCH_PATH_RE = re.compile(r"(?:^|;)\s*((?:SET|RESET)\s+(?:(?:LOCAL|SESSION)\s+)?search_path)\b", re.IGNORECASE)
_TRANSACTION_RE = re.compile(
    r"(?:^|;)\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b",
    re.IGNORECASE)


def _ident_value(token: str) -> str:
    return token[1:-1].replace('""', '"') if token.startswith('"') else token.lower()


def check_references(migration: Migration, known_schemas: Iterable[str] = CONVENTION_SCHEMAS) -> None:
    """Refuse a file that references another schema (see the module docstring)."""
    own = migration.schema
    code = _strip(migration.sql, keep_dollar_bodies=True)
    statements = _strip(migration.sql, keep_dollar_bodies=False)
    foreign = (set(known_schemas) | {"public"}) - {own}

    def line_of(match: re.Match[str], text: str) -> int:
        return text.count("\n", 0, match.start(1)) + 1  # blanking keeps every newline outside literals

    for match in _QUALIFIER_RE.finditer(code):
        qualifier = _ident_value(match.group(1))
        if qualifier in foreign:
            raise MigrationError(f"{migration.ident}: line {line_of(match, code)} references schema {qualifier!r}; "
                                 f"a file of schema {own!r} may only use objects of its own schema")
    for match in _SCHEMA_DDL_RE.finditer(code):
        target = _ident_value(match.group(2))
        if target != own:
            raise MigrationError(f"{migration.ident}: line {line_of(match, code)} {match.group(1).upper()} SCHEMA "
                                 f"{target!r}; a file of schema {own!r} may only create or change {own!r}")
    if (found := _SEARCH_PATH_RE.search(statements)):
        raise MigrationError(f"{migration.ident}: line {line_of(found, statements)} sets search_path; the runner "
                             f"sets it to {own!r} for the file")
    if (found := _TRANSACTION_RE.search(statements)):
        raise MigrationError(f"{migration.ident}: line {line_of(found, statements)} has transaction control "
                             f"({found.group(1).upper()}); the runner applies each run in one transaction")
    if migration.version == 1:
        name = rf'(?:"{re.escape(own)}"|{re.escape(own)}(?![A-Za-z0-9_$]))'
        created = re.search(rf"\bCREATE\s+SCHEMA\s+IF\s+NOT\s+EXISTS\s+{name}", code, re.IGNORECASE)
        if not created:
            raise MigrationError(f"{migration.ident}: version 0001 must create its schema with "
                                 f"CREATE SCHEMA IF NOT EXISTS {own}")


# --- applying ---------------------------------------------------------------------------------------

async def _table_exists(conn: psycopg.AsyncConnection) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MIGRATIONS_TABLE,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def applied_migrations(conn: psycopg.AsyncConnection) -> list[AppliedMigration]:
    """Rows of the migrations table (none when it does not exist yet)."""
    if not await _table_exists(conn):
        return []
    cur = await conn.execute(
        "SELECT schema_name, version, name, checksum, applied_at FROM public.eafix_schema_migrations "
        "ORDER BY schema_name, version")
    return [AppliedMigration(*row) for row in await cur.fetchall()]


def plan(migrations: list[Migration], applied: Iterable[AppliedMigration]) -> MigrationResult:
    """Split the files into already applied and pending; refuse any applied file that changed."""
    recorded: Mapping[tuple[str, int], AppliedMigration] = {(a.schema, a.version): a for a in applied}
    result = MigrationResult()
    newest: dict[str, int] = {}
    for m in migrations:
        newest[m.schema] = max(newest.get(m.schema, 0), m.version)
        row = recorded.get((m.schema, m.version))
        if row is None:
            result.applied.append(m)
            continue
        if row.name != m.name:
            raise MigrationError(f"{m.ident}: version {m.version:04d} of schema {m.schema} was applied as "
                                 f"{row.ident}; an applied migration must never be renamed or replaced")
        if row.checksum != m.checksum:
            raise MigrationError(f"{m.ident}: changed after it was applied on {row.applied_at:%Y-%m-%d %H:%M:%S%z} "
                                 f"(recorded sha256 {row.checksum[:12]}, file sha256 {m.checksum[:12]}); "
                                 "restore it and put the change in a new migration")
        result.already_applied.append(m)
    result.unknown = [a for a in recorded.values() if a.schema in newest and a.version > newest[a.schema]]
    return result


def _describe_failure(m: Migration, exc: psycopg.Error) -> str:
    diag = exc.diag
    where = ""
    if diag.statement_position:
        where = f" line {m.sql.count(chr(10), 0, int(diag.statement_position) - 1) + 1}"
    message = " ".join((diag.message_primary or str(exc)).split())
    code = f" [{diag.sqlstate}]" if diag.sqlstate else ""
    return f"{m.ident}{where}: {message}{code}; rolled back, nothing was applied"


async def _lock(conn: psycopg.AsyncConnection, on_wait: Callable[[str], None] | None) -> bool:
    """Take the advisory lock; returns True when another runner held it first."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    row = await cur.fetchone()
    if row and row[0]:
        return False
    if on_wait:
        on_wait("another migration runner holds the lock; waiting for it to finish")
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    return True


async def migrate(conn: psycopg.AsyncConnection, migrations: list[Migration], *, dry_run: bool = False,
                  on_wait: Callable[[str], None] | None = None) -> MigrationResult:
    """Apply the pending `migrations` on `conn` (an autocommit connection; see the module docstring).

    With `dry_run`, nothing is locked or written: the result lists what a real run would apply.
    """
    if not conn.autocommit:
        raise MigrationError("migrate() needs an autocommit connection (it manages its own transaction)")
    if dry_run:
        result = plan(migrations, await applied_migrations(conn))
        result.dry_run = True
        return result
    waited = await _lock(conn, on_wait)
    try:
        await conn.execute(_CREATE_TABLE)
        result = plan(migrations, await applied_migrations(conn))
        result.waited_for_lock = waited
        if result.applied:
            current: Migration | None = None
            try:
                async with conn.transaction():
                    for current in result.applied:
                        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(
                            sql.Identifier(current.schema)))
                        await conn.execute(current.sql.encode("utf-8"))  # no parameters: simple query protocol
                        await conn.execute(
                            "INSERT INTO public.eafix_schema_migrations (schema_name, version, name, checksum) "
                            "VALUES (%s, %s, %s, %s)",
                            (current.schema, current.version, current.name, current.checksum))
            except psycopg.Error as exc:
                if current is None or conn.broken:  # a lost connection is not the file's fault
                    raise
                raise MigrationError(_describe_failure(current, exc)) from exc
        return result
    finally:
        if not conn.closed and not conn.broken:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


async def run(conninfo: str, credentials: Mapping[str, str] | None = None, *, directory: Path | None = None,
              dry_run: bool = False, on_wait: Callable[[str], None] | None = None,
              missing_ok: bool = False, connect_timeout: int = 10) -> MigrationResult:
    """Discover the files, connect, migrate, disconnect (what `eafix migrate` and the test fixture run)."""
    migrations = discover(directory, missing_ok=missing_ok)
    options: dict[str, Any] = {"application_name": "eafix-migrate", **(credentials or {})}
    if "connect_timeout" not in conninfo_to_dict(conninfo):
        options["connect_timeout"] = connect_timeout
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, **options)
    async with conn:
        return await migrate(conn, migrations, dry_run=dry_run, on_wait=on_wait)
