"""The database: the single source of truth for what the bot tracks (runs) and what happened (audit)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    case,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.schema import Index
from sqlalchemy.types import TypeDecorator

from bot.db import schema
from bot.errors import MigrateBotError


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunState(StrEnum):
    PENDING = "pending"  # waiting for a second person's approval
    STARTING = "starting"  # someone won the claim; the Graph action is being called
    RUNNING = "running"  # Graph accepted the action; the poller follows the job
    FINISHED = "finished"  # the job reached an end state; the final notice went out
    REJECTED = "rejected"
    EXPIRED = "expired"
    NOT_STARTED = "not_started"  # the Graph action was refused; nothing runs


class FinalNotice(StrEnum):
    """Where a run's final notice stands (``Run.final_notice``; None: not attempted yet)."""

    POSTING = "posting"  # a post is in flight or its answer was lost: look in the thread before posting again
    SENT = "sent"  # in the thread
    DM = "dm"  # the channel refused it for good: the requester gets it as a DM


#: first key of the per-run advisory locks (PostgreSQL): ``(RUN_LOCK_CLASS, run_id)``
RUN_LOCK_CLASS = 0x6D62  # "mb"

ACTIVE_STATES = (RunState.PENDING, RunState.STARTING, RunState.RUNNING)
_ACTIVE_SQL = "state IN (" + ", ".join(f"'{state.value}'" for state in ACTIVE_STATES) + ")"


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator):
    """SQLite forgets time zones: store UTC, read back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[override]
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):  # type: ignore[override]
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Run(Base):
    """One request to act on a job (migrate, validate or cancel) and everything the poller needs.

    How a cancel is represented: its own run (``action="cancel"``) in its own lane.

    A cancel request is a run like any other, so approval (pending → starting claim, approve/reject/expire), the
    audit trail and ``/migrate list`` treat it exactly like a migrate or validate request. The partial unique indexes
    allow one active migrate-or-validate run per job *and* one active cancel per job, because the cancel exists to
    stop the run that is active. When the job already has a RUNNING run, the cancel run records it in
    ``parent_run_id``: its approval request and its outcome are posted in that run's thread, and it never gets a
    poller of its own; the parent's poller follows the job to ``cancelled`` and posts the one final notice. Once Graph
    accepts, the attached cancel run is FINISHED. Without a running run the cancel run is standalone: root message,
    poller and final notice of its own, like a validate run.

    Rejected alternative: cancel columns on the migrate run. That needs a second state machine (and a second atomic
    claim) for the approval, and a cancel of a job the bot never started would have no run to live on.
    """

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    job_name: Mapped[str] = mapped_column(String(512), default="")
    action: Mapped[str] = mapped_column(String(16), default="migrate")
    state: Mapped[str] = mapped_column(String(16), default=RunState.STARTING)
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    root_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: A root post was sent and its answer did not come back: look for it before posting again.
    root_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the root post now in flight was sent (None: no post in flight, a pending root's answer was lost).
    root_posting_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    requester_id: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    approver_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # What the poller saw and what it told the channel.
    last_status: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_job_update: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_seen_change_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    posted_status: Mapped[str | None] = mapped_column(String(64), nullable=True)
    posted_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    poll_failures: Mapped[int] = mapped_column(Integer, default=0)
    trouble_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    stale_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    final_notice: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None or a FinalNotice
    final_notice_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A thread reply the poller is posting (JSON: key + the fields to set once it is known to be posted);
    # after a crash the poller looks the key up in the thread instead of posting twice.
    reply_pending: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The requester's DM at the end, sent once: None (not yet) | "sending" (intent recorded; after a crash or a lost
    # answer look in requester_dm_channel for its metadata) | "sent" | "failed".
    requester_dm: Mapped[str | None] = mapped_column(String(16), nullable=True)
    requester_dm_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A cancel of a job that a RUNNING run already follows: that run
    # (its thread gets the cancel; see the class docstring).
    parent_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The job's completeAfterDateTime as last read (the root message shows it; reminders count down to it).
    complete_after: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        # One job, one active run: a second request for the same job fails at the database. Cancel requests
        # have their own lane (see the class docstring): one at a time per job, next to the run they stop.
        Index(
            "one_active_run_per_job",
            "job_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL + " AND action <> 'cancel'"),
            postgresql_where=text(_ACTIVE_SQL + " AND action <> 'cancel'"),
        ),
        Index(
            "one_active_cancel_per_job",
            "job_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL + " AND action = 'cancel'"),
            postgresql_where=text(_ACTIVE_SQL + " AND action = 'cancel'"),
        ),
    )

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class AuditEvent(Base):
    """Append-only record of who decided what and what Graph answered."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(32), default="bot")
    graph_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "job_id": self.job_id,
            "run_id": self.run_id,
            "event": self.event,
            "actor": self.actor,
            "graph_request_id": self.graph_request_id,
            "detail": json.loads(self.detail or "{}"),
        }


class Meta(Base):
    """Small key/value facts about the bot itself (last write check, ...)."""

    __tablename__ = "bot_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class UsedSubmission(Base):
    """A modal submission (its view id) that was acted on: a re-delivery of the same submission finds it here."""

    __tablename__ = "used_submissions"

    view_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class SlackDelivery(Base):
    """A Slack request already taken by some replica: a re-delivery of the same request finds its key here."""

    __tablename__ = "slack_deliveries"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)


class TokenCacheRow(Base):
    """The admin's encrypted MSAL token cache shared by replicas (PostgreSQL); ``version`` is the compare-and-swap
    counter; ``meta`` is the not-secret :class:`bot.credential.token_cache.CacheMetadata` as JSON."""

    __tablename__ = "token_cache"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    meta: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class JobBusy(MigrateBotError):
    """Another request or run for the job is pending or active."""

    def __init__(self, existing: Run) -> None:
        super().__init__(f"Job {existing.job_id} already has a {existing.state} {existing.action} request.")
        self.existing = existing


_APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
)


SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and its parent folder created."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        # also "sqlite:///file:/path/db?mode=ro&uri=true" (SQLite URI filenames): the folder is the path's
        path = url.removeprefix("sqlite:///").split("?", 1)[0].removeprefix("file:")
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql"):
        # TCP keepalives: a replica cut off from the server is noticed (and its locks released) in seconds
        keepalives = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=keepalives)
    return create_engine(url, pool_pre_ping=True)


#: The tables of the first Alembic revision: what a database made before Alembic is adopted as.
_FIRST_REVISION_TABLES = ("runs", "audit_events", "bot_meta")
#: Columns of those tables that later revisions add (adoption must leave them to those revisions).
_LATER_COLUMNS = frozenset({"root_posting_at", "requester_dm", "requester_dm_channel", "complete_after"})


def migrate_schema(engine: Engine) -> schema.SchemaState:
    """Bring the database to the newest schema revision (Alembic), adopting one made before Alembic."""
    return schema.upgrade(engine, adopt=adopt_legacy_schema)


def adopt_legacy_schema(connection: Connection) -> None:
    """A database made by a release before Alembic: create missing tables of the first revision and add missing
    (nullable or defaulted) columns, so it can be stamped as that revision."""
    tables = [Base.metadata.tables[name] for name in _FIRST_REVISION_TABLES]
    Base.metadata.create_all(connection, tables=tables)
    inspector = inspect(connection)
    for table in tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or column.name in _LATER_COLUMNS:
                continue
            column_type = column.type.compile(connection.dialect)
            default = ""
            if column.default is not None and getattr(column.default, "is_scalar", False):
                value = column.default.arg
                default = f" DEFAULT {int(value) if isinstance(value, bool) else repr(value)}"
            connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {column_type}{default}'))
    _upgrade_indexes(connection)
    if connection.dialect.name == "sqlite":
        for statement in _APPEND_ONLY_SQLITE:
            connection.execute(text(statement))


def _upgrade_indexes(connection: Any) -> None:
    """Replace the pre-cancel ``one_active_run_per_job`` (one active run of any action) with the per-lane pair."""
    dialect = connection.engine.dialect.name
    if dialect == "sqlite":
        found = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'one_active_run_per_job'")
        ).scalar()
    elif dialect == "postgresql":
        found = connection.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'one_active_run_per_job'")
        ).scalar()
    else:
        found = None
    if found is not None and "action" not in str(found):
        connection.execute(text("DROP INDEX one_active_run_per_job"))
    for index in Run.__table__.indexes:
        index.create(connection, checkfirst=True)


def _audit_row(
    event_name: str,
    *,
    job_id: str,
    run_id: int | None = None,
    actor: str = "bot",
    graph_request_id: str | None = None,
    **detail: Any,
) -> AuditEvent:
    return AuditEvent(
        event=event_name,
        job_id=job_id,
        run_id=run_id,
        actor=actor,
        graph_request_id=graph_request_id,
        detail=json.dumps(detail, default=str, sort_keys=True),
    )


#: Audit events of the authorization checkpoint (:mod:`bot.workflow.access`): one per request to act.
ACCESS_GRANTED = "access_granted"
ACCESS_REFUSED = "access_refused"
ACCESS_EVENTS = (ACCESS_GRANTED, ACCESS_REFUSED)


@dataclass
class AuditQuery:
    job_id: str | None = None
    since: datetime | None = None
    access: bool = False  # include the checkpoint's decisions (one per click or command)


class Store:
    """Runs and audit events. Every method is one short transaction; objects come back detached."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Store:
        engine = create_db_engine(url)
        migrate_schema(engine)
        return cls(engine)

    @property
    def shared(self) -> bool:
        """Whether several processes may share this database (PostgreSQL), rather than one (SQLite)."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def run_claim(self, run_id: int) -> Iterator[bool]:
        """Exclusive use of one run across processes while the block runs: yields False when another process holds
        it (see :meth:`runs_claim`)."""
        with self.runs_claim([run_id]) as mine:
            yield run_id in mine

    @contextmanager
    def runs_claim(self, run_ids: Iterable[int]) -> Iterator[frozenset[int]]:
        """Exclusive use of several runs across processes while the block runs, on one connection: yields the ids
        this process got (PostgreSQL session advisory locks ``(RUN_LOCK_CLASS, run_id)``; another process holds the
        others); with SQLite, one process: all of them."""
        wanted = sorted(set(run_ids))
        if not self.shared:
            yield frozenset(wanted)
            return
        with self.engine.connect() as connection:
            got = frozenset(
                run_id
                for run_id in wanted
                if connection.execute(
                    text("SELECT pg_try_advisory_lock(:cls, :run)"), {"cls": RUN_LOCK_CLASS, "run": run_id}
                ).scalar()
            )
            connection.commit()
            try:
                yield got
            finally:
                for run_id in got:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:cls, :run)"), {"cls": RUN_LOCK_CLASS, "run": run_id}
                    )
                connection.commit()

    # Slack deliveries
    def first_delivery(self, key: str) -> bool:
        """Record that a Slack request was taken; False when some process took the same request before."""
        try:
            with self.session() as session:
                session.add(SlackDelivery(key=key[:200]))
        except IntegrityError:
            return False
        return True

    def prune_deliveries(self, older_than: datetime) -> int:
        """Forget deliveries and used modal submissions recorded before ``older_than`` (Slack re-delivers within
        minutes); how many rows went."""
        with self.session() as session:
            gone = session.execute(delete(SlackDelivery).where(SlackDelivery.at < older_than)).rowcount or 0
            return gone + (session.execute(delete(UsedSubmission).where(UsedSubmission.at < older_than)).rowcount or 0)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # Runs
    def create_run(self, **fields: Any) -> Run:
        """Insert a run; raise :class:`JobBusy` when the job already has an active one (in the run's lane: cancel
        requests or everything else, see :class:`Run`)."""
        run = Run(**fields)
        try:
            with self.session() as session:
                session.add(run)
        except IntegrityError:
            existing = self.active_run_for(fields["job_id"], lane=fields.get("action") or "migrate")
            if existing is None:  # the other one finished in between: try once more
                try:
                    with self.session() as session:
                        run = Run(**fields)
                        session.add(run)
                except IntegrityError:
                    existing = self.active_run_for(fields["job_id"], lane=fields.get("action") or "migrate")
                    if existing is None:
                        raise
                    raise JobBusy(existing) from None
                return run
            raise JobBusy(existing) from None
        return run

    def get_run(self, run_id: int) -> Run | None:
        with self.session() as session:
            return session.get(Run, run_id)

    def get_runs(self, run_ids: Iterable[int]) -> list[Run]:
        """The runs with these ids, read now, in id order (missing ids are left out)."""
        ids = sorted(set(run_ids))
        if not ids:
            return []
        with self.session() as session:
            return list(session.scalars(select(Run).where(Run.id.in_(ids)).order_by(Run.id)))

    def claim_root_post(self, run_id: int, *, now: datetime, stale_before: datetime) -> Run | None:
        """Mark the run's root message as being posted now, unless it is posted already or another post of it was
        sent after ``stale_before`` (still waiting for its answer): the fresh run when this caller may post, else
        None. One atomic ``UPDATE``, so two processes never both post it."""
        with self.session() as session:
            claimed = session.execute(
                update(Run)
                .where(
                    Run.id == run_id,
                    Run.root_ts.is_(None),
                    (Run.root_posting_at.is_(None)) | (Run.root_posting_at < stale_before),
                )
                .values(root_pending=True, root_posting_at=now)
            ).rowcount
            return session.get(Run, run_id) if claimed == 1 else None

    def active_run_for(self, job_id: str, *, lane: str | None = None) -> Run | None:
        """An active run of the job; with ``lane`` (an action) only one in that action's lane."""
        with self.session() as session:
            query = select(Run).where(Run.job_id == job_id, Run.state.in_([s.value for s in ACTIVE_STATES]))
            if lane is not None:
                query = query.where(Run.action == "cancel" if lane == "cancel" else Run.action != "cancel")
            return session.scalars(query.order_by(Run.id)).first()

    def active_runs_for(self, job_id: str) -> list[Run]:
        """Every active run of the job (at most one per lane), oldest first."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(Run)
                    .where(Run.job_id == job_id, Run.state.in_([s.value for s in ACTIVE_STATES]))
                    .order_by(Run.id)
                )
            )

    def runs_for_job(self, job_id: str, limit: int = 10) -> list[Run]:
        """The job's most recent runs, newest first."""
        with self.session() as session:
            return list(session.scalars(select(Run).where(Run.job_id == job_id).order_by(Run.id.desc()).limit(limit)))

    def listed_runs(self, ended_since: datetime, limit: int) -> tuple[list[Run], int]:
        """Active runs, then runs that ended since ``ended_since`` (newest first): at most ``limit`` of them, and
        how many there are in all. Active runs come first so a cap never hides one."""
        active = Run.state.in_([s.value for s in ACTIVE_STATES])
        condition = active | (Run.finished_at >= ended_since)
        with self.session() as session:
            total = session.scalar(select(func.count()).select_from(Run).where(condition)) or 0
            runs = session.scalars(
                select(Run).where(condition).order_by(case((active, 0), else_=1), Run.id.desc()).limit(limit)
            )
            return list(runs), int(total)

    def count_by_state(self) -> dict[str, int]:
        """How many runs are in each state (states without runs are left out)."""
        with self.session() as session:
            rows = session.execute(select(Run.state, func.count()).group_by(Run.state))
            return {str(state): int(count) for state, count in rows}

    def runs_in(self, *states: RunState) -> list[Run]:
        with self.session() as session:
            return list(session.scalars(select(Run).where(Run.state.in_([s.value for s in states])).order_by(Run.id)))

    def transition(
        self,
        run_id: int,
        from_states: tuple[str, ...] | str,
        to_state: str,
        *,
        audit: dict[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Atomically move a run from one of ``from_states`` to ``to_state``; False when another caller won.
        ``audit``: the :meth:`audit` arguments of an event written in the same transaction, only by the winner."""
        if isinstance(from_states, str):
            from_states = (from_states,)
        with self.session() as session:
            result = session.execute(
                update(Run)
                .where(Run.id == run_id, Run.state.in_([str(s) for s in from_states]))
                .values(state=str(to_state), **fields)
            )
            won = result.rowcount == 1
            if won and audit is not None:
                session.add(_audit_row(**audit))
            return won

    def update_run(self, run_id: int, **fields: Any) -> Run:
        with self.session() as session:
            session.execute(update(Run).where(Run.id == run_id).values(**fields))
            run = session.get(Run, run_id)
            assert run is not None
            return run

    def claim_submission(self, view_id: str, user_id: str) -> bool:
        """Record that the modal submission ``view_id`` is acted on; False when it already was (a re-delivery)."""
        try:
            with self.session() as session:
                session.add(UsedSubmission(view_id=view_id, user_id=user_id))
        except IntegrityError:
            return False
        return True

    # Audit
    def audit(
        self,
        event_name: str,
        *,
        job_id: str,
        run_id: int | None = None,
        actor: str = "bot",
        graph_request_id: str | None = None,
        **detail: Any,
    ) -> None:
        """Append one audit event."""
        with self.session() as session:
            session.add(
                _audit_row(
                    event_name, job_id=job_id, run_id=run_id, actor=actor, graph_request_id=graph_request_id, **detail
                )
            )

    def audit_events(self, query: AuditQuery | None = None) -> list[AuditEvent]:
        query = query or AuditQuery()
        statement = select(AuditEvent).order_by(AuditEvent.id)
        if query.job_id:
            statement = statement.where(AuditEvent.job_id == query.job_id)
        if query.since:
            statement = statement.where(AuditEvent.at >= query.since)
        if not query.access:
            statement = statement.where(AuditEvent.event.not_in(ACCESS_EVENTS))
        with self.session() as session:
            return list(session.scalars(statement))

    def healthy(self, timeout: float = 2.0) -> str | None:
        """None when the database takes a write within ``timeout`` seconds, else why not (for ``/readyz``: a full
        disk, a lock held elsewhere, a read-only file, a server that is down)."""
        dialect = self.engine.dialect.name
        millis = int(timeout * 1000)
        try:
            with self.engine.connect() as connection:
                try:
                    if dialect == "sqlite":
                        connection.exec_driver_sql(f"PRAGMA busy_timeout={millis}")
                    elif dialect == "postgresql":
                        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {millis}")
                        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {millis}")
                    with Session(bind=connection) as session:
                        session.merge(Meta(key="last_write_check", value=utcnow().isoformat()))
                        session.flush()
                    connection.commit()
                finally:
                    connection.rollback()
                    if dialect == "sqlite":
                        connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                        connection.commit()
        except SQLAlchemyError as error:
            return str(getattr(error, "orig", None) or error).splitlines()[0][:200]
        return None

    # Facts about the bot itself
    def get_meta(self, key: str) -> str | None:
        """The ``bot_meta`` value for ``key``, or None."""
        with self.session() as session:
            row = session.get(Meta, key)
            return row.value if row is not None else None

    def set_meta(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key`` in ``bot_meta``; None deletes the key."""
        with self.session() as session:
            if value is None:
                row = session.get(Meta, key)
                if row is not None:
                    session.delete(row)
            else:
                session.merge(Meta(key=key, value=value))
