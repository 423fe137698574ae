"""Leadership: of several replicas on one PostgreSQL database, exactly one runs the background jobs.

The leader holds a PostgreSQL session advisory lock on a connection of its own. Why a lock and not a lease row
with a heartbeat: the server releases a session lock the moment the session ends, so a leader that dies (even by
SIGKILL) frees it as soon as the kernel closes its socket, with no lease time to wait out and no clocks to compare;
a lease would make every takeover wait for the lease to expire and write a heartbeat row all the time. The one
weakness of a session lock, a leader cut off from the server without the server noticing, is bounded by TCP
keepalives on that connection (seconds), by the leader's own heartbeat (it stops leading when its connection
fails), and by the per-run locks the poller takes (:meth:`bot.store.Store.run_claim`), so even an overlap of two
leaders never polls one run twice at once.

Followers try to take the lock every ``retry`` seconds; a new leader calls ``on_elected`` (the app sweeps at
once), so a takeover takes at most ``retry`` plus one sweep after the old leader's connection closed.
With SQLite there is one process (:mod:`bot.db.sqlite_lock`), and it is always the leader (:class:`SoleLeader`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x6D62_6C65_6164  # "mblead": pg_try_advisory_lock key of the leader
DEFAULT_RETRY_SECONDS = 1.0


class Leadership(Protocol):
    """Who runs the background jobs."""

    @property
    def is_leader(self) -> bool: ...

    def start(self) -> None: ...

    def release(self) -> None: ...


class SoleLeader:
    """One process on its own database (SQLite): always the leader."""

    is_leader = True

    def __init__(self, on_elected: Callable[[], None] | None = None) -> None:
        self._on_elected = on_elected

    def start(self) -> None:
        if self._on_elected is not None:
            self._on_elected()

    def release(self) -> None:
        return None


class AdvisoryLeader:
    """Leader election with a PostgreSQL advisory lock held on a dedicated connection (see the module docstring).

    ``engine``: the store's engine (only its URL is used; the lock's connection is never pooled, so closing it
    really ends the session); ``on_elected``: called on the election thread each time this process becomes leader.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        key: int = LEADER_LOCK_KEY,
        retry: float = DEFAULT_RETRY_SECONDS,
        on_elected: Callable[[], None] | None = None,
    ) -> None:
        self._engine = create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": 3,
                "keepalives": 1,
                "keepalives_idle": 2,
                "keepalives_interval": 1,
                "keepalives_count": 3,
            },
        )
        self._key = key
        self._retry = retry
        self._on_elected = on_elected
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._connection: Connection | None = None
        self._leader = False
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader

    def start(self) -> None:
        """Try to lead now, then keep trying (or keep heartbeating) every ``retry`` seconds on a daemon thread."""
        self._attempt()
        self._thread = threading.Thread(target=self._loop, name="leader", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop leading at once (SIGTERM): unlock, end the session, and never try again."""
        self._stop.set()
        with self._guard:
            was_leader = self._leader
            self._leader = False
            self._close(unlock=True)
        if was_leader:
            log.info("leadership released")
        self._engine.dispose()

    def _loop(self) -> None:
        while not self._stop.wait(self._retry):
            self._attempt()

    def _attempt(self) -> None:
        elected = False
        with self._guard:
            if self._stop.is_set():
                return
            try:
                if self._connection is None:
                    self._connection = self._engine.connect()
                if self._leader:
                    self._connection.execute(text("SELECT 1"))
                else:
                    got = self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
                    elected = self._leader = bool(got.scalar())
                self._connection.commit()
            except Exception as error:  # the session is gone, and the lock with it
                if self._leader:
                    log.warning("leadership lost: the database connection failed (%s)", type(error).__name__)
                self._leader = False
                elected = False
                self._close(unlock=False)
                return
        if elected:
            log.info("elected leader: this replica now runs the poller and the background jobs")
            if self._on_elected is not None:
                try:
                    self._on_elected()
                except Exception:
                    log.exception("start of leader duties failed")

    def _close(self, *, unlock: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if unlock:
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
                connection.commit()
        except Exception:
            pass  # closing the session below releases it all the same
        try:
            connection.close()
        except Exception:
            pass


def leadership_for(
    engine: Engine, *, on_elected: Callable[[], None] | None = None, retry: float = DEFAULT_RETRY_SECONDS
) -> Leadership:
    """An :class:`AdvisoryLeader` for PostgreSQL, a :class:`SoleLeader` for anything else (one process)."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLeader(engine, on_elected=on_elected, retry=retry)
    return SoleLeader(on_elected=on_elected)
