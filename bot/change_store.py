"""Requests for changes inside a batch (remove one user, move the cutover) and their approval, in the bot's database.

A change is not a run: the job's migration keeps running (and keeps its run) while a user is removed or the cutover
moved. Its approval follows the same rules as a cancel (:class:`bot.workflow.policy.Policy`), with the same guard:
one atomic ``pending → applying`` step, so two approvers or a double click make exactly one Graph call.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, String, Text, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import Index

from bot.errors import MigrateBotError
from bot.store import Base, Store, UtcDateTime, utcnow


class ChangeState(StrEnum):
    PENDING = "pending"  # waiting for a second person's approval
    APPLYING = "applying"  # approved (or no approval needed): the Graph call is being made
    DONE = "done"  # Graph accepted the change
    REFUSED = "refused"  # Graph (or the bot, after re-reading the job) refused it
    REJECTED = "rejected"
    EXPIRED = "expired"


OPEN_STATES = (ChangeState.PENDING, ChangeState.APPLYING)
_OPEN_SQL = "state IN ('pending', 'applying')"


class ChangeRequest(Base):
    """One requested change: ``kind`` is ``remove`` (``target`` the user's object id) or ``reschedule``
    (``target`` the new completeAfterDateTime, ISO 8601 UTC; ``previous`` the old one)."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    job_name: Mapped[str] = mapped_column(String(512), default="")
    target: Mapped[str] = mapped_column(String(320))
    target_label: Mapped[str] = mapped_column(String(320), default="")
    #: ``target`` for removals, the kind alone for reschedules (one open reschedule per job).
    target_key: Mapped[str] = mapped_column(String(320), default="")
    previous: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=ChangeState.PENDING)
    channel_id: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    thread_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the followed run's thread, if any
    message_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the request / outcome message
    requester_id: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    approver_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        # One open request per change: a second request for the same user (or a second reschedule) fails here.
        Index(
            "one_open_change",
            "kind",
            "job_id",
            "target_key",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
    )


class ChangeBusy(MigrateBotError):
    """Another open request for the same change exists."""

    def __init__(self, existing: ChangeRequest) -> None:
        super().__init__(f"Job {existing.job_id} already has an open {existing.kind} request.")
        self.existing = existing


class ChangeStore:
    """The ``change_requests`` table on the bot's database (revision 0004 creates it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, **fields: Any) -> ChangeRequest:
        """Insert a request; raise :class:`ChangeBusy` when the same change is already open."""
        key = fields["target"] if fields["kind"] == "remove" else fields["kind"]
        try:
            with self.store.session() as session:
                change = ChangeRequest(target_key=key, **fields)
                session.add(change)
            return change
        except IntegrityError:
            existing = self.open_for(fields["kind"], fields["job_id"], key)
            if existing is None:
                raise
            raise ChangeBusy(existing) from None

    def open_for(self, kind: str, job_id: str, key: str) -> ChangeRequest | None:
        with self.store.session() as session:
            return session.scalars(
                select(ChangeRequest).where(
                    ChangeRequest.kind == kind,
                    ChangeRequest.job_id == job_id,
                    ChangeRequest.target_key == key,
                    ChangeRequest.state.in_([s.value for s in OPEN_STATES]),
                )
            ).first()

    def get(self, change_id: int) -> ChangeRequest | None:
        with self.store.session() as session:
            return session.get(ChangeRequest, change_id)

    def for_job(self, job_id: str) -> list[ChangeRequest]:
        with self.store.session() as session:
            return list(
                session.scalars(select(ChangeRequest).where(ChangeRequest.job_id == job_id).order_by(ChangeRequest.id))
            )

    def pending(self) -> list[ChangeRequest]:
        return self.in_state(ChangeState.PENDING)

    def in_state(self, state: ChangeState) -> list[ChangeRequest]:
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(ChangeRequest).where(ChangeRequest.state == state.value).order_by(ChangeRequest.id)
                )
            )

    def transition(self, change_id: int, from_state: str, to_state: str, **fields: Any) -> bool:
        """Atomically move a request from ``from_state``; False when another caller won."""
        with self.store.session() as session:
            result = session.execute(
                update(ChangeRequest)
                .where(ChangeRequest.id == change_id, ChangeRequest.state == str(from_state))
                .values(state=str(to_state), **fields)
            )
            return result.rowcount == 1

    def update(self, change_id: int, **fields: Any) -> ChangeRequest:
        with self.store.session() as session:
            session.execute(update(ChangeRequest).where(ChangeRequest.id == change_id).values(**fields))
            change = session.get(ChangeRequest, change_id)
            assert change is not None
            return change
