"""Apply the numbered migrations in `schema/migrations/`, each once.

`migrate(url)` is idempotent: applied versions are recorded in
`schema_migrations` with a checksum, so running it twice does nothing the
second time, and a migration edited after it was applied is an error (write
a new migration instead). Each migration runs in its own transaction under an
advisory lock, so two processes migrating at once do not collide.

Before applying anything to a new database it checks the server: TimescaleDB installed but not in
`shared_preload_libraries` would make migration 0003's `CREATE EXTENSION` fail with a misleading error, so
that is refused first with what to set (`TimescaleNotPreloaded`). Applied migrations are never edited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schema.db import SCHEMA_DIR, DatabaseError, connect
from schema.maintain import engine

MIGRATIONS_DIR = SCHEMA_DIR / "migrations"
_LOCK_ID = 0x6261_6F67  # "baog"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationChanged(DatabaseError):
    """An applied migration's file changed. Restore it and add a new migration."""


class TimescaleNotPreloaded(DatabaseError):
    """TimescaleDB is installed on the server but not preloaded. Set shared_preload_libraries and restart."""


#: The migration that creates the TimescaleDB extension where the server has it.
_TIMESCALEDB_MIGRATION = 3
_PRELOAD_HINT = (
    "TimescaleDB is installed on this PostgreSQL server but not preloaded, so it cannot be created in this "
    "database: add shared_preload_libraries = 'timescaledb' to postgresql.conf (or `ALTER SYSTEM SET "
    "shared_preload_libraries = 'timescaledb'`), restart PostgreSQL and run `baogong migrate` again. "
    "To stay on plain PostgreSQL, remove the TimescaleDB package from the server instead."
)


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations in version order; files are named NNNN_name.sql."""
    found = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version, _, name = path.stem.partition("_")
        found.append(Migration(int(version), name, path.read_text(encoding="utf-8")))
    return found


def migrate(
    url: str, *, on_apply: Callable[[Migration], None] = lambda m: None, target: int | None = None
) -> list[Migration]:
    """Apply pending migrations (up to version `target` when given); return those applied now.

    Raises MigrationChanged on drift.
    """
    applied_now = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                r["version"]: r["checksum"] for r in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
            wanted = [m for m in discover() if target is None or m.version <= target]
            pending = [m for m in wanted if m.version not in done]
            if any(m.version == _TIMESCALEDB_MIGRATION for m in pending):
                found = engine(conn)
                if found.available and not found.timescaledb and not found.preloaded:
                    raise TimescaleNotPreloaded(_PRELOAD_HINT)
            for migration in wanted:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationChanged(
                            f"migration {migration.version:04d}_{migration.name} changed after it was applied"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                on_apply(migration)
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now
