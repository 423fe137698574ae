"""Button (block_actions) listeners."""

from __future__ import annotations

from slack_bolt import App

from bot.workflow import MigrationFlow
from bot.workers import Workers


def register(app: App, *, flow: MigrationFlow, workers: Workers) -> None:
    """No buttons yet: approval buttons arrive with the approval workflow."""
