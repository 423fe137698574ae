"""Reminders the bot has posted (or is posting) in a run's thread: one row each, written before posting.

The unique key (run, reminder key) makes each reminder exactly once across restarts and replicas: whoever inserts the
row posts; a row left in ``posting`` (a crash, or Slack's answer lost) is settled by looking for the tagged message
in the thread before posting again, like the poller's replies.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import UniqueConstraint

from bot.store import Base, Run, RunState, Store, UtcDateTime, utcnow

POSTING = "posting"
SENT = "sent"
GAVE_UP = "gave_up"  # can't be posted any more (its moment passed, or Slack refuses it for good): not retried


class Reminder(Base):
    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    job_id: Mapped[str] = mapped_column(String(36))
    key: Mapped[str] = mapped_column(String(96))  # kind@the moment it counts down to (a moved cutover: new reminders)
    state: Mapped[str] = mapped_column(String(16), default=POSTING)
    ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("run_id", "key", name="one_reminder_per_run_and_key"),)


class ReminderStore:
    """The ``reminders`` table on the bot's database (revision 0004 creates it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, *, run_id: int, job_id: str, key: str, at: datetime) -> Reminder | None:
        """Record the intent to post; None when it is already recorded (posted, or being posted, by anyone)."""
        try:
            with self.store.session() as session:
                reminder = Reminder(run_id=run_id, job_id=job_id, key=key, created_at=at)
                session.add(reminder)
            return reminder
        except IntegrityError:
            return None

    def unsettled(self) -> list[Reminder]:
        with self.store.session() as session:
            return list(session.scalars(select(Reminder).where(Reminder.state == POSTING).order_by(Reminder.id)))

    def sent(self, reminder_id: int, ts: str | None) -> None:
        with self.store.session() as session:
            session.execute(update(Reminder).where(Reminder.id == reminder_id).values(state=SENT, ts=ts))

    def give_up(self, reminder_id: int) -> None:
        with self.store.session() as session:
            session.execute(update(Reminder).where(Reminder.id == reminder_id).values(state=GAVE_UP))

    def passed_validations(self, since: datetime) -> list[Run]:
        """Validation runs that ended ``validatePassed`` since ``since`` (one indexed query, bounded by time)."""
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(Run)
                    .where(
                        Run.action == "validate",
                        Run.state == RunState.FINISHED.value,
                        Run.outcome == "validatePassed",
                        Run.finished_at >= since,
                    )
                    .order_by(Run.id)
                )
            )

    def for_run(self, run_id: int) -> list[Reminder]:
        with self.store.session() as session:
            return list(session.scalars(select(Reminder).where(Reminder.run_id == run_id).order_by(Reminder.id)))
