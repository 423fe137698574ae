"""A job's users (tasks): which failed, in which order to show them, who a person means, and whether Graph will
still take one user out of the batch (task cancel)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.graph.eligibility import Eligibility, cancel_eligibility
from bot.graph.models import GUID_RE, JobStatus, MigrationJob, MigrationTask, ServiceStatus

FAILED = frozenset({ServiceStatus.FAILED, ServiceStatus.ERROR, ServiceStatus.INVALID})
#: A workload in one of these has been cut over (or is being): Graph no longer takes the user out.
CUT_OVER = frozenset({ServiceStatus.COMPLETED, ServiceStatus.FINALIZING, ServiceStatus.FORCE_COMPLETE})
REMOVED = frozenset({ServiceStatus.CANCELLED, ServiceStatus.PENDING_CANCEL})
UPN_FIELDS = ("userPrincipalName", "upn")
FILTERS = ("failed", "all")


def has_failed(task: MigrationTask) -> bool:
    """A workload of the user failed, is invalid, or carries errors."""
    return any(state.status in FAILED or state.errors for state in task.current_status)


def upn(task: MigrationTask) -> str | None:
    """The user's UPN when Graph sent one with the task (Graph documents only the object id)."""
    extra = task.model_extra or {}
    for name in UPN_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def label(task: MigrationTask) -> str:
    """How the user is shown: the UPN where known, else the target user's object id."""
    return upn(task) or task.id


def failed_first(tasks: list[MigrationTask]) -> list[MigrationTask]:
    """Users with failures first, then the rest; each part by label."""
    return sorted(tasks, key=lambda task: (not has_failed(task), label(task).lower()))


def select(tasks: list[MigrationTask], which: str) -> list[MigrationTask]:
    """``failed``: users with failures; ``all``: everyone (failed first); anything else: the one user whose object
    id or UPN it is (case-insensitive)."""
    ordered = failed_first(tasks)
    if which == "failed":
        return [task for task in ordered if has_failed(task)]
    if which == "all":
        return ordered
    return [task for task in ordered if matches(task, which)]


def matches(task: MigrationTask, who: str) -> bool:
    wanted = who.strip().lower()
    return task.id.lower() == wanted or (upn(task) or "").lower() == wanted


def is_user_ref(text: str) -> bool:
    """A plausible user reference: an object id (GUID) or a UPN (``name@domain``)."""
    text = text.strip()
    return bool(GUID_RE.match(text)) or ("@" in text and not text.startswith("@") and " " not in text)


def removal_eligibility(job: MigrationJob, task: MigrationTask, now: datetime) -> Eligibility:
    """Whether Graph will take this user out of the batch now: the job can still be cancelled (before cutover,
    before completeAfterDateTime once syncing), and none of the user's workloads is cut over or removed."""
    job_verdict = cancel_eligibility(job, now)
    if not job_verdict.allowed:
        reason = job_verdict.reason.replace("a cancel", "removing a user").replace("to cancel", "to remove")
        return Eligibility(False, reason, job_verdict.next_step)
    statuses = {state.status for state in task.current_status}
    if statuses & REMOVED:
        return Eligibility(False, "This user was already taken out of the batch.")
    if statuses & CUT_OVER:
        return Eligibility(
            False,
            "This user's cutover has begun (a workload is finalizing or completed): Graph no longer takes the user "
            "out of the batch.",
        )
    warning = ""
    if job.status in (JobStatus.PROCESSING, JobStatus.IN_PROGRESS) and job.complete_after is not None:
        cutover = job.complete_after.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        warning = f"Possible only until cutover begins (not before {cutover})."
    return Eligibility(
        True,
        "The user can be taken out of the batch; the other users continue. The user can't be added back to this "
        "batch, and any mailbox sync already done is discarded.",
        warning=warning,
    )
