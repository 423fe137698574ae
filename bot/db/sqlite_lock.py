"""One process per SQLite file: ``run`` holds an exclusive lock file next to the database while it runs.

Two bots on one SQLite file would poll every run twice and post every reply twice, the same mistake as two
pollers; several replicas need PostgreSQL. portalocker gives the same non-blocking exclusive lock on every OS, and
the operating system drops it when the process dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

from pathlib import Path

import portalocker
from sqlalchemy.engine import make_url

from bot.errors import MigrateBotError


class DatabaseInUse(MigrateBotError):
    """Another migrate-bot process runs on the same SQLite file."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database.removeprefix("file:")).expanduser().resolve()


class SqliteProcessLock:
    """The exclusive lock ``<database>.lock``; :meth:`acquire` raises :class:`DatabaseInUse` at once when held."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._lock = portalocker.Lock(self.path, mode="a", flags=portalocker.LOCK_EX | portalocker.LOCK_NB)

    def acquire(self) -> SqliteProcessLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(fail_when_locked=True)
        except portalocker.exceptions.LockException:
            raise DatabaseInUse(
                f"another migrate-bot is already running on {self.path.with_suffix('')} (it holds {self.path}); "
                "stop it, or run several replicas on PostgreSQL (DATABASE_URL=postgresql+psycopg://...)"
            ) from None
        return self

    def release(self) -> None:
        self._lock.release()


def lock_sqlite(url: str) -> SqliteProcessLock | None:
    """Hold the process lock of a SQLite database URL (None for PostgreSQL: replicas share it by design)."""
    path = sqlite_path(url)
    return SqliteProcessLock(path).acquire() if path is not None else None
