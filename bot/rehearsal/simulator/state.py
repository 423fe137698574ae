"""The simulated tenant: jobs, their users, the lifecycle state machine and the simulated clock.

Pure Python, no HTTP: :mod:`bot.rehearsal.simulator.wsgi` maps requests onto :class:`Simulation` and renders
:class:`SimError` as Graph's error shape. Statuses advance lazily: every read first applies the
transitions whose time (on the :class:`SimClock`) has come, so nothing runs in the background.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.graph.models import GUID_RE, VALIDATION_TTL, JobStatus

UTC = UTC
#: Workloads in the order tasks list them; create without ``workloads`` means all of them.
ALL_WORKLOADS = ("Exchange", "ODSP", "Teams", "Meeting")
#: What :meth:`Simulation.set_outcome` accepts: how a migration ends, or how a validation ends.
MIGRATION_OUTCOMES = ("completed", "completedWithErrors", "failed")
VALIDATION_OUTCOMES = ("validatePassed", "validateFailed")

# Status chains. A job entering one of these statuses then walks the rest of its chain by itself.
_VALIDATE_RESULT = "@validation-outcome"
_MIGRATE_RESULT = "@migration-outcome"
_GONE = "@gone"
_CHAINS = (
    ("validateSubmitted", "validateProcessing", "validateInProgress", _VALIDATE_RESULT),
    ("processing", "inProgress", "cuttingOver", _MIGRATE_RESULT),
    ("pendingCancel", "cancelled"),
    ("pendingDelete", "deleted", _GONE),
)
_MIGRATE_STATUSES = frozenset({"processing", "inProgress", "cuttingOver", *MIGRATION_OUTCOMES})
_VALIDATE_STATUSES = frozenset({"validateSubmitted", "validateProcessing", "validateInProgress", *VALIDATION_OUTCOMES})
_DELETABLE = frozenset({"completed", "completedWithErrors", "failed", "cancelled"})
_UNTOUCHED = frozenset({"submitted", "validatePassed", "validateFailed"})
_NOT_PATCHABLE = frozenset(
    {
        "cuttingOver",
        *MIGRATION_OUTCOMES,
        "cancelled",
        "pendingCancel",
        "pendingDelete",
        "deleted",
        "approved",
        "adminActionRequired",
    }
)
_INACTIVE = frozenset({"completed", "cancelled", "pendingDelete", "deleted"})

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


# Time
class SimClock:
    """Simulated time: ``speed`` simulated seconds pass per real second, plus what :meth:`advance` adds.

    ``SimClock(speed=0)`` stands still until advanced, which is what tests want.
    """

    def __init__(self, speed: float = 60.0, *, start: datetime | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._real_start = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = (time.monotonic() - self._real_start) * self.speed + self._offset
        return self._start + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> datetime:
        """Move simulated time forward by ``seconds``; return the new time."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()


def graph_time(moment: datetime | None) -> str | None:
    """Graph's DateTimeOffset text: UTC with seven fractional digits, like the service."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def parse_graph_time(text: object) -> datetime:
    """Read an ISO 8601 time (``Z`` or offset; naive means UTC). Raises ``ValueError``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("not a date")
    value = _FRACTION.sub(r"\1", text.strip().replace("z", "Z").replace("Z", "+00:00"))
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Configuration
@dataclass(frozen=True)
class Timings:
    """Simulated seconds a job spends in each transient status (migration: 30 minutes in all)."""

    validate_submitted: float = 30
    validate_processing: float = 60
    validate_in_progress: float = 150
    migrate_processing: float = 120
    migrate_sync: float = 900  # inProgress; cutover also waits for completeAfterDateTime
    migrate_cutover: float = 780
    cancel: float = 60
    delete: float = 120  # pendingDelete, then as long again as ``deleted`` before the job is gone (404)

    def dwell(self, status: str) -> float:
        return {
            "validateSubmitted": self.validate_submitted,
            "validateProcessing": self.validate_processing,
            "validateInProgress": self.validate_in_progress,
            "processing": self.migrate_processing,
            "inProgress": self.migrate_sync,
            "cuttingOver": self.migrate_cutover,
            "pendingCancel": self.cancel,
            "pendingDelete": self.delete,
            "deleted": self.delete,
        }.get(status, 0.0)


@dataclass(frozen=True)
class SimOptions:
    """The choices the reference leaves open (its section 7). Where documents contradict each other the default is
    the strict reading (the one that refuses more); the switch gives the other."""

    page_size: int = 20
    max_users_per_job: int = 2000  # API reference; the admin guide says 100
    auto_validate_on_create: bool = False  # API reference: create starts nothing
    reject_past_complete_after: bool = True  # overview: 400 on create/PATCH with a past date (False: update page)
    revalidate_expired: bool = False  # validate page: only from submitted/validateFailed (True: accept an expired one)
    cancel_in_progress: bool = False  # cancel page: 409 once inProgress (True: admin table, until the date passes)
    app_only_actions: bool = False  # validate/migrate pages: app-only not supported (True: overview, supported)
    delete_untouched: bool = False  # DELETE also from submitted / validatePassed / validateFailed
    one_active_batch_per_user: bool = True  # create: 409 when a user is in another active job
    validation_ttl: timedelta = VALIDATION_TTL


class SimError(Exception):
    """An HTTP error the simulator answers with, in Graph's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


#: 409 texts, on purpose unlike the documented examples: clients must not decide from a message (reference §5).
_REFUSED = "Request rejected by the migration service: operation '{action}' is not permitted for this batch ({status})."
_STALE = "Request rejected by the migration service: the batch's readiness check is stale."


def _conflict(message: str, code: str = "conflict") -> SimError:
    return SimError(409, code, message)


def _bad(message: str) -> SimError:
    return SimError(400, "invalidRequest", message)


# Resources
@dataclass
class ServiceState:
    status: str = "notStarted"
    message: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_graph(self, service: str) -> dict[str, Any]:
        return {
            "service": service,
            "status": self.status,
            "message": self.message,
            "errors": [dict(error) for error in self.errors],
        }


@dataclass
class SimTask:
    id: str
    services: dict[str, ServiceState]
    last_updated: datetime
    removed: bool = False  # taken out of the batch by a task cancel


@dataclass
class SimJob:
    id: str
    display_name: str
    status: str
    job_type: str
    message: str
    complete_after: datetime
    source_tenant_id: str
    target_tenant_id: str
    created_by: str
    created: datetime
    last_updated: datetime
    workloads: list[str]
    resources: list[str]
    exchange_settings: dict[str, Any] | None
    tasks: list[SimTask]
    outcome: str = "completed"
    validation_outcome: str = "validatePassed"
    invalid_users: int = 1  # how many users are invalid when validation fails
    show_resources: bool = True  # Graph shows resources: [] once validate or migrate ran
    pending: list[str] = field(default_factory=list)
    phase_start: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    @property
    def canonical(self) -> str:
        return JobStatus.parse(self.status).value


# The engine
class Simulation:
    """The tenant's jobs and the rules of section 3 of the reference. Every method takes the one lock."""

    def __init__(
        self,
        clock: SimClock,
        timings: Timings | None = None,
        options: SimOptions | None = None,
        *,
        target_tenant_id: str = "a1b2c3d4-e5f6-4789-9abc-def012345678",
        caller: str = "migadmin@northwind.onmicrosoft.com",
    ) -> None:
        self.clock = clock
        self.timings = timings or Timings()
        self.options = options or SimOptions()
        self.target_tenant_id = target_tenant_id
        self.caller = caller
        self.lock = threading.RLock()
        self._jobs: dict[str, SimJob] = {}
        self._people: dict[str, tuple[str, str]] = {}  # user id -> (UPN, display name)
        self._seq = 0

    # Lazy progress
    def _advance(self, job: SimJob, now: datetime) -> None:
        while job.pending and job.id in self._jobs:
            current = job.canonical
            due = (job.phase_start or now) + timedelta(seconds=self.timings.dwell(current))
            if current == "inProgress":
                due = max(due, job.complete_after)
            if due > now:
                return
            following = job.pending.pop(0)
            if following == _GONE:
                del self._jobs[job.id]
                return
            if following == _VALIDATE_RESULT:
                following = job.validation_outcome
            elif following == _MIGRATE_RESULT:
                following = job.outcome
            self._enter(job, following, due, keep_chain=True)

    def _job(self, job_id: str) -> SimJob:
        key = job_id.strip().lower()
        job = self._jobs.get(key)
        if job is not None:
            self._advance(job, self.clock.now())
        job = self._jobs.get(key)
        if job is None:
            raise SimError(
                404,
                "itemNotFound",
                f"UserRequest not found with {self.target_tenant_id}, {job_id}. TraceId: {uuid.uuid4().hex}",
            )
        return job

    def _enter(
        self, job: SimJob, status: str, at: datetime, *, message: str | None = None, keep_chain: bool = False
    ) -> None:
        """Put ``job`` in ``status`` at ``at``: message, jobType, tasks, and (unless walking one) its chain."""
        canonical = JobStatus.parse(status).value
        job.status = status
        job.last_updated = at
        job.phase_start = at
        if not keep_chain:
            job.pending = []
            for chain in _CHAINS:
                if canonical in chain:
                    job.pending = list(chain[chain.index(canonical) + 1 :])
        if canonical in _MIGRATE_STATUSES:
            job.job_type = "migrate"
        elif canonical in _VALIDATE_STATUSES:
            job.job_type = "validate"
        if canonical in _MIGRATE_STATUSES | _VALIDATE_STATUSES:
            job.show_resources = False
        self._update_tasks(job, canonical, at)
        job.message = message if message is not None else _status_message(job, canonical)

    # Tasks (table 3.3 of the reference)
    def _update_tasks(self, job: SimJob, status: str, at: datetime) -> None:
        failing = _failing_users(job)
        for index, task in enumerate(job.tasks):
            changed = False
            for service, state in task.services.items():
                new = _service_state(job, index, task, service, state, status, index in failing)
                if new is not None and new != state:
                    task.services[service] = new
                    changed = True
            if changed:
                task.last_updated = at

    # Reads
    def job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            return _job_json(self._job(job_id))

    def list_jobs(self) -> list[dict[str, Any]]:
        """Every job, most recently created first (the admin guide's "20 most recent")."""
        with self.lock:
            now = self.clock.now()
            for job in list(self._jobs.values()):
                self._advance(job, now)
            ordered = sorted(self._jobs.values(), key=lambda job: (job.created, job.seq), reverse=True)
            return [_job_json(job) for job in ordered]

    def tasks(self, job_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [_task_json(task) for task in self._job(job_id).tasks if not task.removed]

    def task(self, job_id: str, task_id: str) -> dict[str, Any]:
        with self.lock:
            return _task_json(self._task(self._job(job_id), task_id))

    def _task(self, job: SimJob, task_id: str) -> SimTask:
        for task in job.tasks:
            if task.id == task_id.strip().lower() and not task.removed:
                return task
        raise SimError(404, "itemNotFound", f"User {task_id} is not part of batch {job.id}.")

    def user(self, user_id: str) -> dict[str, Any]:
        """``GET /users/{id}``: a user of any job (its UPN derived from the id unless set with :meth:`name_user`)."""
        wanted = user_id.strip().lower()
        with self.lock:
            known = wanted in self._people or any(
                task.id == wanted for job in self._jobs.values() for task in job.tasks
            )
            if not known:
                raise SimError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{user_id}' does not exist or one of its queried reference-property objects are not "
                    "present.",
                )
            upn, name = self._people.get(wanted) or (f"user-{wanted[:8]}@target.example", f"User {wanted[:8]}")
        return {"id": wanted, "userPrincipalName": upn, "displayName": name}

    def name_user(self, user_id: str, upn: str, display_name: str | None = None) -> None:
        """Give a user (of a job or not) its own UPN and display name."""
        with self.lock:
            self._people[user_id.strip().lower()] = (upn, display_name or upn.split("@")[0])

    def job_ids(self) -> list[str]:
        with self.lock:
            return list(self._jobs)

    # Graph writes
    def create(self, body: Any) -> dict[str, Any]:
        """``POST crossTenantMigrationJobs``: validate the fields, then a job in ``submitted``."""
        with self.lock:
            fields = self._check_create(body)
            now = self.clock.now()
            job = self._new_job(now=now, **fields)
            if self.options.auto_validate_on_create:
                self._enter(job, "validateSubmitted", now)
            return _job_json(job)

    def _check_create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.")
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise _bad("displayName is required.")
        try:
            complete_after = parse_graph_time(body.get("completeAfterDateTime"))
        except ValueError:
            raise _bad("completeAfterDateTime is required and must be an ISO 8601 date and time.") from None
        if self.options.reject_past_complete_after and complete_after <= self.clock.now():
            raise _bad("completeAfterDateTime can't be in the past.")
        source = body.get("sourceTenantId")
        if not isinstance(source, str) or not GUID_RE.match(source):
            raise _bad("sourceTenantId is required and must be a GUID.")
        if str(body.get("resourceType") or "").lower() != "users":
            raise _bad("resourceType is required and must be 'Users'.")
        resources = body.get("resources")
        if (
            not isinstance(resources, list)
            or not resources
            or not all(isinstance(item, str) and GUID_RE.match(item) for item in resources)
        ):
            raise _bad("resources is required: a list of target user object IDs (GUIDs).")
        resources = [item.lower() for item in resources]
        if len(set(resources)) != len(resources):
            raise _bad("resources contains the same user more than once.")
        if len(resources) > self.options.max_users_per_job:
            raise _bad(f"A job can hold at most {self.options.max_users_per_job} users; got {len(resources)}.")
        workloads = _workloads(body.get("workloads"))
        settings = body.get("exchangeSettings")
        if "Exchange" in workloads and not (
            isinstance(settings, dict) and settings.get("sourceEndpoint") and settings.get("targetDeliveryDomain")
        ):
            raise _bad(
                "exchangeSettings with sourceEndpoint and targetDeliveryDomain is required for the Exchange workload."
            )
        if any(job.display_name.lower() == name.strip().lower() for job in self._jobs.values()):
            raise _conflict(f"A job named '{name.strip()}' already exists in this tenant.", "nameAlreadyExists")
        if self.options.one_active_batch_per_user:
            active = {
                task.id: job
                for job in self._jobs.values()
                if job.canonical not in _INACTIVE
                for task in job.tasks
                if not task.removed
            }
            for user in resources:
                if user in active:
                    raise _conflict(
                        f"User {user} is already in active batch '{active[user].display_name}'. "
                        "A user can belong to only one active batch.",
                        "userInAnotherBatch",
                    )
        return {
            "display_name": name.strip(),
            "complete_after": complete_after,
            "source_tenant_id": source.lower(),
            "users": resources,
            "workloads": workloads,
            "exchange_settings": settings,
        }

    def update(self, job_id: str, body: Any) -> None:
        """``PATCH``: only completeAfterDateTime, and only until cutover begins."""
        with self.lock:
            job = self._job(job_id)
            if not isinstance(body, dict) or set(body) != {"completeAfterDateTime"}:
                raise _bad("Only completeAfterDateTime can be updated.")
            try:
                moment = parse_graph_time(body["completeAfterDateTime"])
            except ValueError:
                raise _bad("completeAfterDateTime must be an ISO 8601 date and time.") from None
            now = self.clock.now()
            status = job.canonical
            if status in _NOT_PATCHABLE or status not in _KNOWN:
                raise _conflict(f"completeAfterDateTime can't be changed: the current status is {job.status}.")
            if status in ("processing", "inProgress") and job.complete_after <= now:
                raise _conflict(
                    f"completeAfterDateTime can't be changed after it has passed (the current status is {job.status})."
                )
            if self.options.reject_past_complete_after and moment <= now:
                raise _bad("completeAfterDateTime can't be in the past.")
            job.complete_after = moment  # not a status change: lastUpdatedDateTime stays

    def delete(self, job_id: str) -> None:
        """``DELETE``: 202 from an ended job, then pendingDelete, deleted, and gone."""
        with self.lock:
            job = self._job(job_id)
            allowed = _DELETABLE | (_UNTOUCHED if self.options.delete_untouched else frozenset())
            if job.canonical not in allowed:
                raise _conflict(
                    f"The job can't be deleted because the current status is {job.status}. "
                    "Cancel it first or wait until it ends."
                )
            self._enter(job, "pendingDelete", self.clock.now())

    def validate(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(job_id)
            now = self.clock.now()
            status = job.canonical
            if status not in ("submitted", "validateFailed") and not (
                self._expired(job, now) and self.options.revalidate_expired
            ):
                raise _conflict(_REFUSED.format(action="validate", status=job.status))
            self._enter(job, "validateSubmitted", now)
            return _job_json(job)

    def migrate(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(job_id)
            now = self.clock.now()
            status = job.canonical
            if status not in ("validatePassed", "failed", "completedWithErrors"):
                raise _conflict(_REFUSED.format(action="migrate", status=job.status))
            if self._expired(job, now):
                raise _conflict(_STALE)
            self._enter(job, "processing", now)
            return _job_json(job)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Accepted before cutover (for inProgress: before completeAfterDateTime); 409 otherwise."""
        with self.lock:
            job = self._job(job_id)
            now = self.clock.now()
            self._check_cancellable(job, now)
            self._enter(job, "pendingCancel", now)
            return {"id": job.id, "displayName": job.display_name, "status": job.status, "message": job.message}

    def cancel_task(self, job_id: str, task_id: str) -> dict[str, Any]:
        """Take one user out of the batch (before its cutover); the other users are unaffected."""
        with self.lock:
            job = self._job(job_id)
            task = self._task(job, task_id)
            now = self.clock.now()
            # Not the job cancel's rule (strict: refused once syncing): a task cancel is what takes one user out of
            # a batch that is syncing, up to that user's cutover (reference: task cancel #11, 409 after
            # completeAfterDateTime has passed).
            if job.canonical not in _CANCELLABLE or job.complete_after <= now:
                raise _conflict(_REFUSED.format(action="cancel", status=job.status))
            if any(state.status == "completed" for state in task.services.values()):
                raise _conflict(_REFUSED.format(action="cancel", status="completed (user)"))
            task.services = {name: ServiceState("cancelled") for name in task.services}
            task.removed = True
            task.last_updated = now
            return {
                "status": "Accepted",
                "message": f"Cancellation request for user id: {task.id} from batch: {job.id} was accepted.",
            }

    def _expired(self, job: SimJob, now: datetime) -> bool:
        """A validatePassed older than the validation TTL (by lastUpdatedDateTime)."""
        return job.canonical == "validatePassed" and now - job.last_updated >= self.options.validation_ttl

    def _check_cancellable(self, job: SimJob, now: datetime) -> None:
        status = job.canonical
        if status == "inProgress" and (not self.options.cancel_in_progress or job.complete_after <= now):
            raise _conflict(_REFUSED.format(action="cancel", status=job.status))
        if status not in _CANCELLABLE:
            raise _conflict(_REFUSED.format(action="cancel", status=job.status))

    # Direct control (tests and rehearsals)
    def add_job(
        self,
        display_name: str,
        *,
        status: str = "submitted",
        users: int | Iterable[str] = 3,
        workloads: Iterable[str] | None = None,
        complete_after: datetime | None = None,
        validated_at: datetime | None = None,
        created: datetime | None = None,
        job_id: str | None = None,
        outcome: str | None = None,
        message: str | None = None,
        invalid_users: int = 1,
        **fields: Any,
    ) -> str:
        """Put a job straight into any status (even one Graph does not have). Returns its id."""
        with self.lock:
            now = self.clock.now()
            job_id = (job_id or str(uuid.uuid4())).lower()
            if not GUID_RE.match(job_id):
                raise ValueError(f"job id {job_id!r} is not a GUID")
            if job_id in self._jobs:
                raise ValueError(f"job {job_id} already exists")
            if isinstance(users, int):
                user_ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"simulator/{job_id}/user/{n}")) for n in range(users)]
            else:
                user_ids = [str(user).lower() for user in users]
            source = str(fields.pop("sourceTenantId", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"))
            workload_list = _workloads(list(workloads) if workloads is not None else ["Exchange", "ODSP", "Teams"])
            settings = fields.pop(
                "exchangeSettings",
                {"targetDeliveryDomain": "northwind.onmicrosoft.com", "sourceEndpoint": "T2T-Fabrikam"},
            )
            created = created or min(now, validated_at or now) - timedelta(hours=1)
            job = self._new_job(
                now=created,
                display_name=display_name,
                users=user_ids,
                complete_after=complete_after or now + timedelta(days=14),
                source_tenant_id=source,
                workloads=workload_list,
                exchange_settings=settings,
                job_id=job_id,
            )
            job.created_by = str(fields.pop("createdBy", job.created_by))
            job.extra.update(fields)
            job.invalid_users = invalid_users
            if outcome is not None:
                self._set_outcome(job, outcome)
            if status != "submitted" or message is not None:
                self._enter(job, status, validated_at or now, message=message)
            return job_id

    def set_status(self, job_id: str, status: str, message: str | None = None) -> None:
        """Move a job to ``status`` now (any text: unknown values are kept as sent); its chain then continues."""
        with self.lock:
            job = self._job(job_id)
            self._enter(job, status, self.clock.now(), message=message)

    def set_outcome(self, job_id: str, outcome: str) -> None:
        with self.lock:
            self._set_outcome(self._job(job_id), outcome)

    @staticmethod
    def _set_outcome(job: SimJob, outcome: str) -> None:
        if outcome in MIGRATION_OUTCOMES:
            job.outcome = outcome
        elif outcome in VALIDATION_OUTCOMES:
            job.validation_outcome = outcome
        else:
            raise ValueError(f"outcome must be one of {MIGRATION_OUTCOMES + VALIDATION_OUTCOMES}, not {outcome!r}")

    def remove(self, job_id: str) -> None:
        """The job vanishes at once (every later call gets 404)."""
        with self.lock:
            self._jobs.pop(job_id.strip().lower(), None)

    def _new_job(
        self,
        *,
        now: datetime,
        display_name: str,
        users: list[str],
        complete_after: datetime,
        source_tenant_id: str,
        workloads: list[str],
        exchange_settings: dict[str, Any] | None,
        job_id: str | None = None,
    ) -> SimJob:
        self._seq += 1
        job = SimJob(
            id=job_id or str(uuid.uuid4()),
            display_name=display_name,
            status="submitted",
            job_type="validate",
            message="",
            complete_after=complete_after,
            source_tenant_id=source_tenant_id,
            target_tenant_id=self.target_tenant_id,
            created_by=self.caller,
            created=now,
            last_updated=now,
            workloads=workloads,
            resources=list(users),
            exchange_settings=exchange_settings,
            tasks=[SimTask(user, {name: ServiceState() for name in workloads}, now) for user in users],
            phase_start=now,
            seq=self._seq,
        )
        self._jobs[job.id] = job
        return job


_KNOWN = frozenset(status.value for status in JobStatus) - {"unknownFutureValue"}
_CANCELLABLE = frozenset(
    {
        "submitted",
        "validateSubmitted",
        "validateProcessing",
        "validateInProgress",
        "validatePassed",
        "validateFailed",
        "processing",
        "inProgress",
    }
)


def _workloads(value: object) -> list[str]:
    if value is None:
        return list(ALL_WORKLOADS)
    by_lower = {name.lower(): name for name in ALL_WORKLOADS}
    if not isinstance(value, list) or not value:
        raise _bad("workloads must be a non-empty list of Exchange, ODSP, Teams, Meeting.")
    names = []
    for item in value:
        name = by_lower.get(str(item).lower())
        if name is None:
            raise _bad(f"Unknown workload '{item}'. Supported: {', '.join(ALL_WORKLOADS)}.")
        if name not in names:
            names.append(name)
    return names


def _failing_users(job: SimJob) -> set[int]:
    """Which users end with errors under the job's migration outcome (by index)."""
    count = len(job.tasks)
    if job.outcome == "failed":
        return set(range(count))
    if job.outcome == "completedWithErrors":
        return {index for index in range(count) if index % 3 == 1} or {0}
    return set()


def _failed_services(job: SimJob) -> list[str]:
    """Under completedWithErrors a failing user fails these workloads (example D of the reference)."""
    picked = [name for name in ("ODSP", "Meeting") if name in job.workloads]
    return picked or [job.workloads[-1]]


def _service_state(
    job: SimJob, index: int, task: SimTask, service: str, state: ServiceState, status: str, failing: bool
) -> ServiceState | None:
    """A workload's state once the job enters ``status``; None leaves it as it is."""
    if task.removed:
        return None
    user = task.id
    if (
        status in ("processing", "inProgress", "cuttingOver", *MIGRATION_OUTCOMES, "pendingCancel", "cancelled")
        and state.status == "completed"
    ):
        return None  # a retry covers only the users (and workloads) that did not finish
    if status in ("submitted", "validateSubmitted", "validateProcessing", "processing"):
        return ServiceState("notStarted")
    if status == "validateInProgress":
        return ServiceState("inProgress" if service == job.workloads[0] else "notStarted")
    if status == "validatePassed":
        return ServiceState("valid")
    if status == "validateFailed":
        if index < max(job.invalid_users, 1) and service == job.workloads[0]:
            return ServiceState("invalid", "Validation failed.", [_validation_error(user, service)])
        return ServiceState("valid")
    if status == "inProgress":
        return ServiceState("syncing" if service == "Exchange" else "synced")
    if status == "cuttingOver":
        return ServiceState("finalizing" if service == "Exchange" else "inProgress")
    if status == "completed" or (status == "completedWithErrors" and not failing):
        return ServiceState("completed", _completed_message(job, index, user, service))
    if status == "completedWithErrors":
        if service in _failed_services(job):
            return ServiceState(
                "failed",
                f"{_SERVICE_NAMES[service]} migration failed.",
                [_migration_error(user, service, partial=True)],
            )
        return ServiceState("completed", _completed_message(job, index, user, service))
    if status == "failed":
        return ServiceState(
            "failed", f"{_SERVICE_NAMES[service]} migration failed.", [_migration_error(user, service, partial=False)]
        )
    if status in ("pendingCancel", "cancelled"):
        return ServiceState(status)
    return None  # approved, adminActionRequired, pendingDelete, deleted, unknown values: tasks unchanged


_SERVICE_NAMES = {"Exchange": "Mailbox", "ODSP": "OneDrive", "Teams": "Teams", "Meeting": "Meeting"}


def _validation_error(user: str, service: str) -> dict[str, str]:
    if service == "Exchange":
        return {
            "code": "EXCH-08",
            "message": f"Target user {user} is not a MailUser with a matching "
            "ExchangeGuid. Stamp the source mailbox attributes and validate again.",
        }
    return {
        "code": "MIGR-001",
        "message": f"User {user} is not in the source tenant's migration scope "
        "(mail-enabled security group). Add the user and validate again.",
    }


def _migration_error(user: str, service: str, *, partial: bool) -> dict[str, str]:
    if service == "Exchange" and not partial:
        return {"code": "EXCH-07", "message": "No valid migration endpoints for the remote tenant."}
    if service == "Meeting":
        return {"code": "MIGR-002", "message": f"User {user} is not authorized to migrate."}
    return {"code": "MIGR-003", "message": f"User [{user}] migration failed. Please retry user migration."}


def _completed_message(job: SimJob, index: int, user: str, service: str) -> str:
    if service != "Teams":
        return ""
    messages = 1200 + 137 * index
    imported = messages - (index % 5) * 7
    threads = 180 + 11 * index
    threads_ok = threads - index % 3
    return (
        f"Teams migration for user {user} completed. {imported}/{messages} ({100 * imported / messages:.1f}%) "
        f"messages imported successfully (>= 80% threshold). {threads_ok}/{threads} "
        f"({100 * threads_ok / threads:.1f}%) threads imported successfully (>= 90% threshold). "
        f"Request Id: {uuid.uuid5(uuid.NAMESPACE_URL, user + job.id)}. Batch Id: {job.id}."
    )


def _status_message(job: SimJob, status: str) -> str:
    failing = sum(1 for task in job.tasks if any(s.status in ("failed", "invalid") for s in task.services.values()))
    users = len([task for task in job.tasks if not task.removed])
    return {
        "submitted": "",
        "validateSubmitted": "Validation job has been submitted successfully",
        "validateProcessing": "Validation is being prepared.",
        "validateInProgress": "Validation is in progress.",
        "validatePassed": "Validation has completed successfully with no failures.",
        "validateFailed": f"Validation has completed with failures for {failing} of {users} users. "
        "Review the user errors, fix them and validate again.",
        "processing": "Migration job has been submitted successfully",
        "inProgress": "Content is syncing; users are not affected. Cutover starts after completeAfterDateTime.",
        "cuttingOver": "Cutover is in progress.",
        "completed": "The batch and all of its users have been successfully migrated with no failures.",
        "completedWithErrors": f"The batch completed with errors for {failing} of {users} users. "
        "Review user errors and retry.",
        "failed": "The batch failed. Review user errors and retry.",
        "pendingCancel": "cancellation request has been accepted for the migration job",
        "cancelled": "The batch was cancelled.",
        "pendingDelete": "The batch is being deleted.",
        "deleted": "The batch was deleted.",
    }.get(status, job.message)


def _job_json(job: SimJob) -> dict[str, Any]:
    body = {
        "id": job.id,
        "displayName": job.display_name,
        "jobType": job.job_type,
        "status": job.status,
        "message": job.message,
        "completeAfterDateTime": graph_time(job.complete_after),
        "sourceTenantId": job.source_tenant_id,
        "targetTenantId": job.target_tenant_id,
        "resourceType": "users",
        "resources": list(job.resources) if job.show_resources else [],
        "workloads": list(job.workloads),
        "createdBy": job.created_by,
        "createdDateTime": graph_time(job.created),
        "lastUpdatedDateTime": graph_time(job.last_updated),
        "exchangeSettings": dict(job.exchange_settings) if job.exchange_settings else None,
    }
    body.update(job.extra)
    return body


def _task_json(task: SimTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "lastUpdatedDateTime": graph_time(task.last_updated),
        "currentStatus": [state.to_graph(service) for service, state in task.services.items()],
    }
