"""Who may start migrations and who may approve them: user ids, Slack user groups, channels, workspace."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.web import slack_error

log = logging.getLogger(__name__)


class UsergroupMembers:
    """Members of Slack user groups, cached for ``ttl`` seconds (``usergroups.users.list`` is Tier 2)."""

    def __init__(
        self,
        slack: WebClient,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        background: Callable[[Callable[[], object]], object] | None = None,
    ) -> None:
        self._slack = slack
        self._ttl = ttl
        self._clock = clock
        self._background = background or _in_a_thread
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()

    def members(self, group_id: str) -> frozenset[str]:
        """The group's user ids. Only the very first lookup of a group waits for Slack: once known, a stale
        list is served while one background refresh runs, so a click never waits on this Tier-2 method."""
        with self._lock:
            cached = self._cache.get(group_id)
            stale = cached is not None and self._clock() - cached[0] >= self._ttl
            refresh = stale and group_id not in self._refreshing
            if refresh:
                self._refreshing.add(group_id)
        if cached is None:
            return self._fetch(group_id)
        if refresh:
            self._background(lambda: self._fetch(group_id))
        return cached[1]

    def warm(self, *group_ids: str | None) -> None:
        """Look the groups up now (at start), so that no person's first click waits for Slack."""
        for group_id in filter(None, group_ids):
            self._fetch(group_id)

    def _fetch(self, group_id: str) -> frozenset[str]:
        try:
            response = self._slack.usergroups_users_list(usergroup=group_id)
            users = frozenset(response.get("users") or [])
        except (SlackApiError, OSError) as error:
            log.warning("usergroups.users.list %s failed: %s", group_id, slack_error(error))
            with self._lock:
                self._refreshing.discard(group_id)
                cached = self._cache.get(group_id)
            return cached[1] if cached else frozenset()
        with self._lock:
            self._cache[group_id] = (self._clock(), users)
            self._refreshing.discard(group_id)
        return users


def _in_a_thread(work: Callable[[], object]) -> None:
    threading.Thread(target=work, name="usergroup-refresh", daemon=True).start()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass
class Policy:
    """The access rules from the settings. ``team_id`` is the installed workspace (from ``auth.test``)."""

    groups: UsergroupMembers
    team_id: str | None = None
    allowed_users: frozenset[str] = frozenset()
    migrators_group: str | None = None
    allowed_channels: frozenset[str] = frozenset()
    require_approval: bool = True
    approvers: frozenset[str] = frozenset()
    approvers_group: str | None = None
    allow_self_approval: bool = False

    def check_place(self, team_id: str | None, channel_id: str | None) -> Decision:
        """Workspace and channel checks: no network."""
        if self.team_id and team_id and team_id != self.team_id:
            return Decision(False, "This bot serves another Slack workspace.")
        if self.allowed_channels and channel_id not in self.allowed_channels:
            return Decision(False, "Migrations can't be started from this channel. Use one of the migration channels.")
        return Decision(True)

    def may_migrate(self, user_id: str) -> Decision:
        """Whether ``user_id`` may request migrations (``ALLOWED_SLACK_USERS`` or ``MIGRATORS_USERGROUP``)."""
        if not self.allowed_users and not self.migrators_group:
            return Decision(
                False,
                "No one is allowed to start migrations yet: an operator must set "
                "ALLOWED_SLACK_USERS or MIGRATORS_USERGROUP.",
            )
        if user_id in self.allowed_users:
            return Decision(True)
        if self.migrators_group and user_id in self.groups.members(self.migrators_group):
            return Decision(True)
        return Decision(
            False, "You are not on the list of people who may start migrations. Ask a migration admin to add you."
        )

    def may_approve(self, user_id: str, requester_id: str) -> Decision:
        """Whether ``user_id`` may approve a request made by ``requester_id``."""
        if user_id == requester_id and not self.allow_self_approval:
            return Decision(False, "You can't approve your own request: a second person must approve it.")
        if user_id in self.approvers:
            return Decision(True)
        if self.approvers_group and user_id in self.groups.members(self.approvers_group):
            return Decision(True)
        return Decision(False, "You are not an approver for migrations.")

    def may_read(self, user_id: str) -> Decision:
        """Migrators and approvers may read job details, the run list, a job's users and the App Home."""
        migrator = self.may_migrate(user_id)
        if migrator.allowed or self.may_approve(user_id, requester_id="").allowed:
            return Decision(True)
        return migrator

    def approver_mentions(self) -> str:
        """Mentions for the approvers (user group first), for the approval request."""
        parts = []
        if self.approvers_group:
            parts.append(f"<!subteam^{self.approvers_group}>")
        parts.extend(f"<@{user}>" for user in sorted(self.approvers))
        return " ".join(parts)
