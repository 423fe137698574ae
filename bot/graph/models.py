"""The cross-tenant migration job and task resources, their statuses and the sets they fall into."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bot.errors import InvalidJobId

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VALIDATION_TTL = timedelta(days=7)
VALIDATION_WARN_AFTER = timedelta(days=6)


def parse_job_id(text: str) -> str:
    """Return the job id in canonical lower case, or raise :class:`InvalidJobId`."""
    candidate = text.strip().strip("{}")
    if len(candidate) != 36 or not GUID_RE.match(candidate):
        raise InvalidJobId(text)
    return candidate.lower()


def _lookup(enum: type[StrEnum], value: object, aliases: dict[str, str]) -> Any:
    if isinstance(value, enum):
        return value
    key = str(value or "").strip().lower()
    key = aliases.get(key, key)
    for member in enum:
        if member.value.lower() == key:
            return member
    return enum("unknownFutureValue")


class JobStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    PROCESSING = "processing"
    CUTTING_OVER = "cuttingOver"
    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completedWithErrors"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PENDING_CANCEL = "pendingCancel"
    ADMIN_ACTION_REQUIRED = "adminActionRequired"
    VALIDATE_SUBMITTED = "validateSubmitted"
    VALIDATE_PROCESSING = "validateProcessing"
    VALIDATE_IN_PROGRESS = "validateInProgress"
    VALIDATE_PASSED = "validatePassed"
    VALIDATE_FAILED = "validateFailed"
    PENDING_DELETE = "pendingDelete"
    DELETED = "deleted"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"

    @classmethod
    def parse(cls, value: object) -> JobStatus:
        """Case-insensitive; ``Canceled`` reads as ``cancelled``; anything unknown is ``unknownFutureValue``."""
        return _lookup(cls, value, {"canceled": "cancelled"})


class ServiceStatus(StrEnum):
    NOT_STARTED = "notStarted"
    VALID = "valid"
    INVALID = "invalid"
    ERROR = "error"
    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PENDING_CANCEL = "pendingCancel"
    SYNCING = "syncing"
    SYNCED = "synced"
    FINALIZING = "finalizing"
    FORCE_COMPLETE = "forceComplete"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"

    @classmethod
    def parse(cls, value: object) -> ServiceStatus:
        return _lookup(cls, value, {"canceled": "cancelled"})


#: A migration has ended; nothing more will happen without a new action.
MIGRATION_TERMINAL = frozenset(
    {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DELETED}
)
#: A validation has ended.
VALIDATION_TERMINAL = frozenset({JobStatus.VALIDATE_PASSED, JobStatus.VALIDATE_FAILED})
#: ``migrate`` is accepted from these (and from validatePassed only within 7 days).
MIGRATABLE = frozenset({JobStatus.VALIDATE_PASSED, JobStatus.FAILED, JobStatus.COMPLETED_WITH_ERRORS})
#: ``validate`` is accepted from these.
VALIDATABLE = frozenset({JobStatus.SUBMITTED, JobStatus.VALIDATE_FAILED})
#: ``cancel`` is refused from these (cutover running, or already ended).
NOT_CANCELLABLE = MIGRATION_TERMINAL | frozenset(
    {
        JobStatus.CUTTING_OVER,
        JobStatus.PENDING_CANCEL,
        JobStatus.PENDING_DELETE,
        JobStatus.APPROVED,
        JobStatus.ADMIN_ACTION_REQUIRED,
    }
)


def _as_utc(moment: datetime | None) -> datetime | None:
    """Graph sends UTC; a timestamp without an offset is read as UTC, never as the server's local time."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


UtcTime = Annotated[datetime | None, AfterValidator(_as_utc)]


class _GraphModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class _KeepsRawStatus(_GraphModel):
    """A model whose ``status`` is parsed into an enum keeps Graph's own string in ``raw_status``."""

    raw_status: str = ""

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        if isinstance(data, dict) and "raw_status" not in data:
            data = {**data, "raw_status": str(data.get("status") or "")}
        return data


class MigrationError(_GraphModel):
    code: str | None = None
    message: str | None = None


class ServiceStatusDetails(_KeepsRawStatus):
    service: str = ""
    status: ServiceStatus = ServiceStatus.UNKNOWN_FUTURE_VALUE
    raw_status: str = ""
    message: str | None = None
    errors: list[MigrationError] = Field(default_factory=list)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> ServiceStatus:
        return ServiceStatus.parse(value)

    @field_validator("errors", mode="before")
    @classmethod
    def _errors(cls, value: object) -> object:
        return value or []


class MigrationTask(_GraphModel):
    """One user of a job (the ``users`` collection)."""

    id: str
    last_updated: UtcTime = Field(None, validation_alias=AliasChoices("lastUpdatedDateTime", "last_updated"))
    current_status: list[ServiceStatusDetails] = Field(
        default_factory=list, validation_alias=AliasChoices("currentStatus", "current_status")
    )

    @field_validator("current_status", mode="before")
    @classmethod
    def _statuses(cls, value: object) -> object:
        return value or []


class MigrationJob(_KeepsRawStatus):
    """A crossTenantMigrationJob. Unknown fields are kept (``model_extra``)."""

    id: str
    display_name: str = Field("", validation_alias=AliasChoices("displayName", "display_name"))
    job_type: str | None = Field(None, validation_alias=AliasChoices("jobType", "job_type"))
    status: JobStatus = JobStatus.UNKNOWN_FUTURE_VALUE
    raw_status: str = ""
    message: str | None = None
    source_tenant_id: str | None = Field(None, validation_alias=AliasChoices("sourceTenantId", "source_tenant_id"))
    target_tenant_id: str | None = Field(None, validation_alias=AliasChoices("targetTenantId", "target_tenant_id"))
    complete_after: UtcTime = Field(None, validation_alias=AliasChoices("completeAfterDateTime", "complete_after"))
    created_by: str | None = Field(None, validation_alias=AliasChoices("createdBy", "created_by"))
    created_at: UtcTime = Field(None, validation_alias=AliasChoices("createdDateTime", "created_at"))
    last_updated: UtcTime = Field(None, validation_alias=AliasChoices("lastUpdatedDateTime", "last_updated"))
    workloads: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    resource_type: str | None = Field(None, validation_alias=AliasChoices("resourceType", "resource_type"))
    exchange_settings: dict[str, Any] | None = Field(
        None, validation_alias=AliasChoices("exchangeSettings", "exchange_settings")
    )

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> JobStatus:
        return JobStatus.parse(value)

    @field_validator("workloads", "resources", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return value or []

    @property
    def status_label(self) -> str:
        """The status as Graph sent it when it is not one we know, else the canonical name."""
        if self.status is JobStatus.UNKNOWN_FUTURE_VALUE and self.raw_status:
            return self.raw_status
        return self.status.value

    @property
    def name(self) -> str:
        return self.display_name or self.id


#: Statuses in which a migration of the job is under way (before it ends).
MIGRATION_RUNNING = frozenset(
    {
        JobStatus.PROCESSING,
        JobStatus.IN_PROGRESS,
        JobStatus.CUTTING_OVER,
        JobStatus.APPROVED,
        JobStatus.ADMIN_ACTION_REQUIRED,
    }
)
#: Statuses in which a validation of the job is under way.
VALIDATION_RUNNING = frozenset(
    {JobStatus.VALIDATE_SUBMITTED, JobStatus.VALIDATE_PROCESSING, JobStatus.VALIDATE_IN_PROGRESS}
)
#: What a job's status looks like once each action has taken effect (read back after an unclear answer).
ACTION_EFFECTS = {
    "migrate": MIGRATION_RUNNING,
    "validate": VALIDATION_RUNNING | VALIDATION_TERMINAL,
    "cancel": frozenset({JobStatus.PENDING_CANCEL, JobStatus.CANCELLED}),
}


def took_effect(action: str, after: MigrationJob, *, since: datetime | None, came_from_elsewhere: bool) -> bool:
    """Whether the job as read back (``after``) shows ``action`` applied: its status is one the action leads to
    (:data:`ACTION_EFFECTS`) and either the job was known to be in another status before the action
    (``came_from_elsewhere``) or it changed after ``since``; a migrate also shows as a job of type migrate that
    changed after ``since``. ``since``: when the status before the action was read (None: never)."""
    newer = after.last_updated is not None and (since is None or after.last_updated > since)
    if after.status in ACTION_EFFECTS[action] and (came_from_elsewhere or newer):
        return True
    return action == "migrate" and (after.job_type or "").lower() == "migrate" and newer
