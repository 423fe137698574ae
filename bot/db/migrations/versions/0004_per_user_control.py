"""Per-user control and the cutover window: change requests (remove a user, reschedule), thread reminders, and
the cutover time each run remembers.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_STAMP = sa.DateTime(timezone=True)
_OPEN = "state IN ('pending', 'applying')"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("complete_after", _STAMP))
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("job_name", sa.String(512), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("target_label", sa.String(320), nullable=False),
        sa.Column("target_key", sa.String(320), nullable=False),
        sa.Column("previous", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("team_id", sa.String(32)),
        sa.Column("thread_ts", sa.String(32)),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("requester_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approver_id", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("decided_at", _STAMP),
    )
    op.create_index("ix_change_requests_job_id", "change_requests", ["job_id"])
    where = sa.text(_OPEN)
    op.create_index(
        "one_open_change",
        "change_requests",
        ["kind", "job_id", "target_key"],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ts", sa.String(32)),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.UniqueConstraint("run_id", "key", name="one_reminder_per_run_and_key"),
    )
    op.create_index("ix_reminders_run_id", "reminders", ["run_id"])


def downgrade() -> None:
    op.drop_table("reminders")
    op.drop_table("change_requests")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("complete_after")
