"""The schema of the releases before Alembic: runs, audit events, bot facts.

A database those releases made (``create_all``, no ``alembic_version``) is adopted as this revision
(:func:`bot.db.schema.upgrade`).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ACTIVE = "state IN ('pending', 'starting', 'running')"
_STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("job_name", sa.String(512), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("team_id", sa.String(32)),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("root_ts", sa.String(32)),
        sa.Column("root_pending", sa.Boolean, nullable=False),
        sa.Column("requester_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approver_id", sa.String(32)),
        sa.Column("decision_note", sa.Text),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("decided_at", _STAMP),
        sa.Column("started_at", _STAMP),
        sa.Column("finished_at", _STAMP),
        sa.Column("last_status", sa.String(64)),
        sa.Column("last_message", sa.Text),
        sa.Column("last_job_update", _STAMP),
        sa.Column("last_seen_change_at", _STAMP),
        sa.Column("posted_status", sa.String(64)),
        sa.Column("posted_message", sa.Text),
        sa.Column("poll_failures", sa.Integer, nullable=False),
        sa.Column("trouble_warned", sa.Boolean, nullable=False),
        sa.Column("stale_warned", sa.Boolean, nullable=False),
        sa.Column("final_notice", sa.String(16)),
        sa.Column("final_notice_ts", sa.String(32)),
        sa.Column("outcome", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("reply_pending", sa.Text),
        sa.Column("parent_run_id", sa.Integer),
    )
    op.create_index("ix_runs_job_id", "runs", ["job_id"])
    for name, lane in (
        ("one_active_run_per_job", "action <> 'cancel'"),
        ("one_active_cancel_per_job", "action = 'cancel'"),
    ):
        where = sa.text(f"{_ACTIVE} AND {lane}")
        op.create_index(name, "runs", ["job_id"], unique=True, sqlite_where=where, postgresql_where=where)
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _STAMP, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.Integer),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(32), nullable=False),
        sa.Column("graph_request_id", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_events_job_id", "audit_events", ["job_id"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_table(
        "bot_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS audit_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )


def downgrade() -> None:
    op.drop_table("bot_meta")
    op.drop_table("audit_events")
    op.drop_table("runs")
