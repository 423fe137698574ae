"""App Home: each migrator's and approver's dashboard of the batches the bot follows.

Published with ``views.publish`` when a person opens the tab (``app_home_opened``) and again, for everyone who has
opened it, whenever the dashboard changes (:meth:`Home.refresh`, run every few seconds by the scheduler: one
database query, and Graph only for users with errors, cached). Who may see it (migrators and approvers) is the
checkpoint's decision (:class:`bot.workflow.access.Checkpoint`): people it refuses see only why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from cachetools import LRUCache, TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import CredentialError, GraphError
from bot.graph import tasks as task_rules
from bot.graph.client import GraphClient
from bot.slack.web import permalink
from bot.store import Run, Store, utcnow
from bot.ui import home as ui
from bot.workflow.access import Act
from bot.workflow.policy import Decision

log = logging.getLogger(__name__)

VIEWERS_KEY = "home_viewers"
MAX_VIEWERS = 500
REFRESH_SECONDS = 15
ERRORS_TTL = 60.0
DENIED = "denied"  # the fingerprint of the refusal view


class Home:
    """Builds and publishes the dashboard."""

    def __init__(
        self,
        *,
        store: Store,
        graph: GraphClient,
        slack: WebClient,
        recheck: Callable[[str, Act], Decision],
        clock: Callable[[], datetime] = utcnow,
        days: int = 7,
    ) -> None:
        self.store = store
        self.graph = graph
        self.slack = slack
        self.recheck = recheck  # Checkpoint.recheck: whether a viewer may still see the dashboard at a refresh
        self.clock = clock
        self.days = days
        self._lock = threading.Lock()
        self._errors: TTLCache[int, int | None] = TTLCache(maxsize=1000, ttl=ERRORS_TTL)
        self._ended_errors: LRUCache[int, int | None] = LRUCache(maxsize=1000)  # ended runs: counts stay
        self._links: LRUCache[tuple[str, str], str] = LRUCache(maxsize=1000)
        self._published: dict[str, str] = {}  # user -> fingerprint of what they see

    def opened(self, user_id: str) -> None:
        """``app_home_opened``, allowed by the checkpoint: remember the person and publish their dashboard now."""
        self._remember(user_id)
        self.publish(user_id, *self._build(), force=True)

    def refused(self, user_id: str, reason: str) -> None:
        """``app_home_opened``, refused by the checkpoint: the tab says why (the person is not remembered)."""
        self.publish(user_id, ui.not_allowed(reason), DENIED, force=True)

    def refresh(self) -> int:
        """Publish again for everyone who opened the tab, where what they would see changed; how many."""
        viewers = self._viewers()
        if not viewers:
            return 0
        built = self._build()
        published = 0
        for user_id in viewers:
            decision = self.recheck(user_id, Act.HOME)
            view, fingerprint = built if decision.allowed else (ui.not_allowed(decision.reason), DENIED)
            published += self.publish(user_id, view, fingerprint)
        return published

    def publish(self, user_id: str, view: dict, fingerprint: str, *, force: bool = False) -> bool:
        """``views.publish`` of ``view`` unless the person already sees ``fingerprint`` (``force``: publish anyway)."""
        with self._lock:
            if not force and self._published.get(user_id) == fingerprint:
                return False
        try:
            self.slack.views_publish(user_id=user_id, view=view)
        except SlackApiError as error:
            log.warning("views.publish for %s failed: %s", user_id, error.response.get("error"))
            return False
        with self._lock:
            self._published[user_id] = fingerprint
        return True

    # The dashboard
    def _build(self) -> tuple[dict, str]:
        now = self.clock()
        runs, total = self.store.listed_runs(now - timedelta(days=self.days), ui.HOME_LIMIT)
        runs = [run for run in runs if run.parent_run_id is None and run.root_ts]
        batches = [ui.Batch(run, self._where(run), self._error_count(run)) for run in runs]
        view = ui.dashboard(batches, total=total, now=now)
        # The fingerprint leaves out the "Updated" time, so an unchanged dashboard is not published again.
        fingerprint = hashlib.sha256(json.dumps(view["blocks"][:-1], sort_keys=True).encode()).hexdigest()
        return view, fingerprint

    def _where(self, run: Run) -> str:
        key = (run.channel_id, run.root_ts or "")
        with self._lock:
            cached = self._links.get(key)
        if cached is not None:
            return cached
        link = permalink(self.slack, run.channel_id, run.root_ts)
        if link.startswith("<http"):
            with self._lock:
                self._links[key] = link
        return link

    def _error_count(self, run: Run) -> int | None:
        ended = run.state not in ui.ACTIVE
        cache = self._ended_errors if ended else self._errors
        with self._lock:
            if run.id in cache:
                return cache[run.id]
        try:
            count = sum(1 for task in self.graph.list_tasks(run.job_id) if task_rules.has_failed(task))
        except (GraphError, CredentialError) as error:
            log.info("home: users of %s unreadable: %s", run.job_id, error)
            return None
        with self._lock:
            cache[run.id] = count
        return count

    # Who opened the tab (kept in the database: a restart keeps refreshing their dashboards)
    def _viewers(self) -> list[str]:
        raw = self.store.get_meta(VIEWERS_KEY)
        return list(json.loads(raw)) if raw else []

    def _remember(self, user_id: str) -> None:
        with self._lock:
            viewers = [v for v in self._viewers() if v != user_id] + [user_id]
            self.store.set_meta(VIEWERS_KEY, json.dumps(viewers[-MAX_VIEWERS:]))
