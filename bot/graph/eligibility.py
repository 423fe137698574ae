"""What each action (migrate, validate, cancel) is allowed to do with a job now, and what to tell the person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.errors import NO_REVALIDATION
from bot.graph.models import (
    MIGRATION_RUNNING,
    MIGRATION_TERMINAL,
    VALIDATION_RUNNING,
    VALIDATION_TTL,
    VALIDATION_WARN_AFTER,
    JobStatus,
    MigrationJob,
)


@dataclass(frozen=True)
class Eligibility:
    """Whether ``migrate`` may be called now, and what to tell the person."""

    allowed: bool
    reason: str
    next_step: str = ""
    validation_age: timedelta | None = None
    warning: str = ""


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def migrate_eligibility(job: MigrationJob, now: datetime) -> Eligibility:
    """Decide from the job alone whether Graph will accept ``migrate`` now."""
    status = job.status
    if status is JobStatus.VALIDATE_PASSED:
        age = now - _utc(job.last_updated) if job.last_updated else None
        if age is not None and age >= VALIDATION_TTL:
            return Eligibility(
                False,
                f"Validation passed {_days(age)} ago; Graph refuses migrate once it is older than 7 days.",
                f"{NO_REVALIDATION} Cancel it with `/migrate cancel {job.id}`.",
                validation_age=age,
            )
        warning = ""
        if age is not None and age >= VALIDATION_WARN_AFTER:
            left = VALIDATION_TTL - age
            warning = f"Validation expires in {_hours(left)}: start it before then (Graph offers no revalidation)."
        return Eligibility(True, "Validation passed: ready to migrate.", validation_age=age, warning=warning)
    if status in (JobStatus.FAILED, JobStatus.COMPLETED_WITH_ERRORS):
        return Eligibility(True, "A new attempt retries only the users who did not finish.")
    if status in (JobStatus.SUBMITTED, JobStatus.VALIDATE_FAILED):
        return Eligibility(
            False,
            "The job has not passed validation.",
            f"Validate it first with `/migrate validate {job.id}`, fix any invalid users, then start it.",
        )
    if status in VALIDATION_RUNNING:
        return Eligibility(False, "Validation is still running.", "Wait for validatePassed, then run /migrate again.")
    if status in MIGRATION_RUNNING:
        return Eligibility(
            False, "A migration of this job is already running.", f"Follow it with `/migrate status {job.id}`."
        )
    if status is JobStatus.COMPLETED:
        return Eligibility(False, "The job already completed with no errors.", "Nothing is left to migrate.")
    return _gone_or_unknown(job)


def _days(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    return f"{days:.1f} days"


def _hours(left: timedelta) -> str:
    hours = max(left.total_seconds() / 3600, 0)
    return f"{hours:.0f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def _when(moment: datetime | None) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown date"


def validate_eligibility(job: MigrationJob, now: datetime) -> Eligibility:
    """Decide from the job alone whether Graph will accept ``validate`` now.

    Documented: only from ``submitted`` and ``validateFailed``. An *expired* ``validatePassed`` (older than 7 days)
    is refused too, with the way out that works (reference section 7 item 7: no documented revalidation).
    """
    status = job.status
    if status is JobStatus.SUBMITTED:
        return Eligibility(True, "The job has not been validated yet.")
    if status is JobStatus.VALIDATE_FAILED:
        return Eligibility(True, "The last validation failed. Validate again once the invalid users are fixed.")
    if status is JobStatus.VALIDATE_PASSED:
        age = now - _utc(job.last_updated) if job.last_updated else None
        if age is not None and age >= VALIDATION_TTL:
            return Eligibility(
                False,
                f"Validation passed {_days(age)} ago and has expired: Graph refuses migrate after 7 days.",
                f"{NO_REVALIDATION} Cancel it with `/migrate cancel {job.id}`.",
                validation_age=age,
            )
        left = f" It stays valid for another {_hours(VALIDATION_TTL - age)}." if age is not None else ""
        return Eligibility(
            False,
            f"Validation already passed.{left}",
            f"Start the migration with `/migrate {job.id}`.",
            validation_age=age,
        )
    if status in VALIDATION_RUNNING:
        return Eligibility(
            False, "A validation of this job is already running.", f"Wait for its result: `/migrate status {job.id}`."
        )
    if status in MIGRATION_RUNNING:
        return Eligibility(
            False,
            "A migration of this job is running; it can't be validated now.",
            f"Follow it with `/migrate status {job.id}`.",
        )
    if status in (JobStatus.FAILED, JobStatus.COMPLETED_WITH_ERRORS):
        return Eligibility(
            False,
            f"The job was already migrated (status {job.status_label}); Graph validates only "
            "jobs in submitted or validateFailed.",
            f"Retry the users who did not finish with `/migrate {job.id}`.",
        )
    if status is JobStatus.COMPLETED:
        return Eligibility(False, "The job already completed with no errors.", "Nothing is left to validate.")
    return _gone_or_unknown(job)


def cancel_eligibility(job: MigrationJob, now: datetime) -> Eligibility:
    """Decide from the job alone whether Graph will accept ``cancel`` now: before cutover only (for a migration
    that is syncing: before ``completeAfterDateTime``); never from cuttingOver or an ended job."""
    status = job.status
    cutover = _when(job.complete_after)
    if status is JobStatus.CUTTING_OVER:
        return Eligibility(
            False,
            "Cutover has begun: users are being switched to the target tenant, and Graph no "
            "longer accepts a cancel. The migration continues to its end.",
            f"Follow it to the end (`/migrate status {job.id}`); deal with any failed users afterwards.",
        )
    if status is JobStatus.IN_PROGRESS and job.complete_after is not None and _utc(job.complete_after) <= now:
        return Eligibility(
            False,
            f"The cutover date ({cutover}) has passed: cutover can start at any moment and "
            "Graph no longer accepts a cancel. The migration continues.",
            f"Follow it to the end (`/migrate status {job.id}`).",
        )
    if status is JobStatus.PENDING_CANCEL:
        return Eligibility(
            False, "A cancel of this job is already being processed.", f"Wait for it: `/migrate status {job.id}`."
        )
    if status in MIGRATION_TERMINAL:
        return Eligibility(False, f"The job already ended (status {job.status_label}); there is nothing to cancel.")
    if status in (JobStatus.PENDING_DELETE, JobStatus.DELETED):
        return Eligibility(False, "The job is being deleted; there is nothing to cancel.")
    if status in (JobStatus.APPROVED, JobStatus.ADMIN_ACTION_REQUIRED):
        return Eligibility(
            False,
            f"Graph accepts no action on a job in status {job.status_label}.",
            "Check the batch in the Microsoft 365 admin center.",
        )
    if status in (JobStatus.PROCESSING, JobStatus.IN_PROGRESS):
        return Eligibility(
            True,
            "The migration is still syncing: no user has been cut over yet.",
            warning=(
                f"Cancel is possible at most until cutover begins (not before {cutover}); Graph's cancel page "
                "refuses it (409) once the migration is in progress."
            ),
        )
    if status is JobStatus.UNKNOWN_FUTURE_VALUE:
        return Eligibility(
            False,
            f"Graph reports a status this bot does not know ({job.status_label}).",
            "Check the job in the Microsoft 365 admin center.",
        )
    return Eligibility(True, "No migration has started; cancelling ends the batch for good.")


def eligibility_for(action: str, job: MigrationJob, now: datetime) -> Eligibility:
    """The eligibility of ``action`` (``migrate``, ``validate`` or ``cancel``) for the job now."""
    if action == "validate":
        return validate_eligibility(job, now)
    if action == "cancel":
        return cancel_eligibility(job, now)
    return migrate_eligibility(job, now)


def _gone_or_unknown(job: MigrationJob) -> Eligibility:
    """The verdict, whatever the action, for a cancelled or deleted job or a status this bot does not know."""
    if job.status in (JobStatus.CANCELLED, JobStatus.PENDING_CANCEL):
        return Eligibility(False, "The job was cancelled.", "Create a new batch for these users.")
    if job.status in (JobStatus.PENDING_DELETE, JobStatus.DELETED):
        return Eligibility(False, "The job is being deleted.", "Create a new batch for these users.")
    return Eligibility(
        False,
        f"Graph reports a status this bot does not know ({job.status_label}).",
        "Check the job in the Microsoft 365 admin center.",
    )
