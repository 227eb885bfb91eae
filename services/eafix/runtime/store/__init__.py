"""PostgreSQL store runtime: the `Database` pool wrapper and the migration runner.

Services use `Database.from_settings(settings)` and `db.transaction()`; schema changes are SQL
files under `eafix/migrations/<schema>/NNNN_name.sql`, applied by `eafix migrate` (the chart's
pre-install/pre-upgrade hook Job). See `database` and `migrations` for the details.
"""

from eafix.runtime.store.database import Database, StoreError
from eafix.runtime.store.migrations import (
    MIGRATION_LOCK_KEY,
    MIGRATIONS_TABLE,
    AppliedMigration,
    Migration,
    MigrationError,
    MigrationResult,
    default_directory,
    discover,
    migrate,
)

__all__ = [
    "MIGRATIONS_TABLE",
    "MIGRATION_LOCK_KEY",
    "AppliedMigration",
    "Database",
    "Migration",
    "MigrationError",
    "MigrationResult",
    "StoreError",
    "default_directory",
    "discover",
    "migrate",
]
