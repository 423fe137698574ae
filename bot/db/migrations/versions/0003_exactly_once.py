"""Exactly-once posts and submissions: a root post in flight, the requester's DM, modal submissions used once.

``runs.root_posting_at`` tells a root post still waiting for Slack's answer from a lost one;
``runs.requester_dm`` / ``requester_dm_channel`` make the final DM exactly-once; ``used_submissions`` keeps the
view ids of modal submissions already acted on.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_RUN_COLUMNS = (
    ("root_posting_at", sa.DateTime(timezone=True)),
    ("requester_dm", sa.String(16)),
    ("requester_dm_channel", sa.String(32)),
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name, kind in _RUN_COLUMNS:
            batch.add_column(sa.Column(name, kind))
    op.create_table(
        "used_submissions",
        sa.Column("view_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("used_submissions")
    with op.batch_alter_table("runs") as batch:
        for name, _kind in reversed(_RUN_COLUMNS):
            batch.drop_column(name)
