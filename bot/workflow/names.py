"""Put user principal names beside the object ids a job summary lists (see :mod:`bot.graph.directory`)."""

from __future__ import annotations

from typing import Protocol

from bot.ui.thread import TaskSummary, with_names


class Names(Protocol):
    def names(self, user_ids: list[str]) -> dict[str, str]: ...


def name_failed_users(summary: TaskSummary, directory: Names | None, limit: int) -> TaskSummary:
    """The summary with UPNs for the first ``limit`` users with errors (the ones a message shows)."""
    if directory is None or not summary.failed_users:
        return summary
    return with_names(summary, directory.names([user.user_id for user in summary.failed_users[:limit]]))
