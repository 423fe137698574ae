"""One active batch per user: Microsoft allows a user in only one active batch at a time (admin guide). Before
``migrate`` the bot compares the job's users with the users of the other active jobs it can see in Graph.

Bounded and cached: at most ``max_jobs`` jobs are listed (``@odata.nextLink`` pages of 20), each other job's users
are read at most once per ``ttl`` seconds (a bounded TTL cache, cachetools), and the job list itself is cached for
``list_ttl`` seconds. A tenant with hundreds of jobs therefore costs a few list pages and, once warm, no reads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from cachetools import TTLCache

from bot.errors import BatchConflict, CredentialError, GraphError, GraphErrorInfo
from bot.graph.client import GraphClient
from bot.graph.models import JobStatus, MigrationJob

log = logging.getLogger(__name__)

#: Jobs whose users are free again (the simulator and the admin guide: ended for good, or going away).
INACTIVE = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.PENDING_DELETE, JobStatus.DELETED})
PAGE_SIZE = 20
NAMED_USERS = 5


@dataclass(frozen=True)
class Conflict:
    job: MigrationJob
    users: tuple[str, ...]


class BatchConflicts:
    """Finds the job's users in other active jobs."""

    def __init__(self, graph: GraphClient, *, max_jobs: int = 500, ttl: float = 300.0, list_ttl: float = 60.0) -> None:
        self.graph = graph
        self.max_jobs = max_jobs
        self._users: TTLCache[str, frozenset[str]] = TTLCache(maxsize=max_jobs, ttl=ttl)
        self._jobs: TTLCache[str, list[MigrationJob]] = TTLCache(maxsize=1, ttl=list_ttl)
        self._lock = threading.Lock()

    def find(self, job_id: str, *, fresh: bool = False) -> list[Conflict]:
        """The other active jobs that share users with ``job_id`` (the job's own users are read fresh). ``fresh``
        also lists the jobs anew (right before ``migrate``); another job's users are taken from the cache either
        way: a job never gains users after it is created, so a cached list can't miss a conflict."""
        mine = {task.id.lower() for task in self.graph.list_tasks(job_id)}
        found = []
        for other in self._active_jobs(fresh):
            if other.id.lower() == job_id.lower():
                continue
            shared = mine & self._users_of(other.id)
            if shared:
                found.append(Conflict(other, tuple(sorted(shared))))
        return found

    def ensure_alone(self, job_id: str, *, fresh: bool = False) -> None:
        """Raise :class:`~bot.errors.BatchConflict` naming the other jobs and users when there are any. When the
        check itself can't be made (Graph failing), it logs and lets Graph decide."""
        try:
            conflicts = self.find(job_id, fresh=fresh)
        except (GraphError, CredentialError) as error:
            log.warning("one-batch-per-user check of %s skipped: %s", job_id, error)
            return
        if conflicts:
            raise BatchConflict(GraphErrorInfo(409, "userInAnotherBatch", describe(conflicts)))

    def forget(self, job_id: str) -> None:
        """Drop what is cached about a job (its users changed)."""
        with self._lock:
            self._users.pop(job_id.lower(), None)
            self._jobs.clear()

    def _active_jobs(self, fresh: bool) -> list[MigrationJob]:
        with self._lock:
            cached = None if fresh else self._jobs.get("jobs")
        if cached is not None:
            return cached
        pages = max(1, -(-self.max_jobs // PAGE_SIZE))
        jobs = [job for job in self.graph.list_jobs(max_pages=pages) if job.status not in INACTIVE][: self.max_jobs]
        with self._lock:
            self._jobs["jobs"] = jobs
        return jobs

    def _users_of(self, job_id: str) -> frozenset[str]:
        key = job_id.lower()
        with self._lock:
            cached = self._users.get(key)
        if cached is not None:
            return cached
        users = frozenset(task.id.lower() for task in self.graph.list_tasks(job_id))
        with self._lock:
            self._users[key] = users
        return users


def describe(conflicts: list[Conflict]) -> str:
    """Plain words (not yet escaped) naming each other job and its shared users."""
    parts = []
    for conflict in conflicts:
        shown = ", ".join(conflict.users[:NAMED_USERS])
        more = f" and {len(conflict.users) - NAMED_USERS} more" if len(conflict.users) > NAMED_USERS else ""
        parts.append(
            f"{len(conflict.users)} of its users are already in active batch '{conflict.job.name}' "
            f"({conflict.job.id}, {conflict.job.status_label}): {shown}{more}"
        )
    return "Microsoft allows a user in only one active batch. " + "; ".join(parts) + "."
