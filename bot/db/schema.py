"""Schema migrations with Alembic: the revisions live in ``bot/db/migrations/versions`` and install with the bot.

:func:`upgrade` brings any database to the newest revision this release knows, under a database lock so two
replicas starting together don't race (PostgreSQL: a transaction-level advisory lock; the DDL is transactional
there, so the loser waits, then finds the work done). A database made by a release before Alembic (tables, no
``alembic_version``) is adopted: brought to the first revision's shape and stamped. A database at a revision this
release does not know (a newer release migrated it) is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from bot.errors import MigrateBotError

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"
#: pg_advisory_xact_lock key for schema upgrades (any constant; distinct from the leader key)
UPGRADE_LOCK_KEY = 0x6D62_5F73_6368  # "mb_sch"


class SchemaTooNew(MigrateBotError):
    """The database was migrated by a newer release."""

    def __init__(self, found: str, head: str) -> None:
        super().__init__(
            f"the database schema is at revision {found}, newer than this release knows (newest: {head}): "
            "run the newer migrate-bot, or point DATABASE_URL at another database"
        )
        self.found = found


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: its revision (None: no Alembic stamp) and the newest this release knows."""

    current: str | None
    head: str
    adopted: bool = False

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this release knows."""
    found = _scripts().get_current_head()
    assert found is not None
    return found


def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def revision_of(connection: Connection) -> str | None:
    """The database's Alembic revision (None: not stamped), read without changing anything."""
    return _revision(connection)


def too_new(revision: str | None) -> str | None:
    """Why this release must not run against a database at ``revision``, or None when it may."""
    if revision is None or revision in known_revisions():
        return None
    return str(SchemaTooNew(revision, head()))


def current(engine: Engine) -> SchemaState:
    """The database's revision, read without changing anything."""
    with engine.connect() as connection:
        return SchemaState(current=_revision(connection), head=head())


def upgrade(engine: Engine, *, adopt: Callable[[Connection], None] | None = None) -> SchemaState:
    """Bring the database to :func:`head` under the upgrade lock; ``adopt`` brings a pre-Alembic database to the
    first revision's shape before it is stamped. Raises :class:`SchemaTooNew` for a revision this release lacks."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
        before = _revision(connection)
        if before is not None and before not in known_revisions():
            raise SchemaTooNew(before, head())
        adopted = before is None and inspect(connection).has_table("runs")
        config = _config(connection)
        if adopted:
            if adopt is not None:
                adopt(connection)
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")
        after = _revision(connection)
        if after != before:
            log.info("database schema upgraded: %s -> %s%s", before or "none", after, " (adopted)" if adopted else "")
        return SchemaState(current=after, head=head(), adopted=adopted)
