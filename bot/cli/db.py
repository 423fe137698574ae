"""``migrate-bot db upgrade`` and ``migrate-bot db current``: the database schema (Alembic revisions)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.db import schema
from bot.errors import MigrateBotError
from bot.store import create_db_engine, migrate_schema


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def db_command(args: Any, settings: Settings, out: TextIO | None = None) -> int:
    """``upgrade``: bring the database to the newest revision (adopting one made before migrations existed);
    ``current``: say where it stands. Exit status 1 when ``current`` finds it behind or ahead."""
    out = out or sys.stdout
    url = settings.resolved_database_url
    engine = create_db_engine(url)
    try:
        if args.action == "upgrade":
            before = schema.current(engine).current
            state = migrate_schema(engine)
            if state.adopted:
                out.write(f"adopted the database made before schema migrations as revision {schema.FIRST_REVISION}\n")
            out.write(f"{_shown(url)}: revision {state.current} (was {before or 'none'}); up to date\n")
            return 0
        state = schema.current(engine)
        if state.current is None:
            made = "made before schema migrations" if inspect(engine).has_table("runs") else "empty"
            out.write(f"{_shown(url)}: no revision ({made}); run migrate-bot db upgrade (newest: {state.head})\n")
            return 1
        if state.current not in schema.known_revisions():
            out.write(f"{_shown(url)}: revision {state.current}, newer than this release knows ({state.head})\n")
            return 1
        behind = "" if state.up_to_date else f"; behind the newest ({state.head}): run migrate-bot db upgrade"
        out.write(f"{_shown(url)}: revision {state.current}{behind}\n")
        return 0 if state.up_to_date else 1
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        reason = (str(cause).splitlines() or [type(cause).__name__])[0][:200]
        raise MigrateBotError(f"database {_shown(url)}: {reason}") from None
    finally:
        engine.dispose()
