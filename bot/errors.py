"""Exceptions raised by migrate-bot's own modules. Each carries a sentence a person can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class MigrateBotError(Exception):
    """Base class for errors with a message that is safe to show to a person."""


class ConfigError(MigrateBotError):
    """A setting is missing or invalid. The message names the variable, never its value."""


class UsageError(MigrateBotError):
    """A command-line argument is wrong; the message says which and how to fix it."""


class InvalidJobId(MigrateBotError, ValueError):
    """A job id that is not a GUID."""

    def __init__(self, value: str) -> None:
        super().__init__("A job id is a GUID such as 5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611.")
        self.value = value


class CredentialError(MigrateBotError):
    """The admin credential cannot produce a token; the message says what the operator must do."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ConflictReason(str, Enum):
    WRONG_STATUS = "wrong_status"
    VALIDATION_EXPIRED = "validation_expired"
    UNKNOWN = "unknown"


@dataclass
class GraphErrorInfo:
    status_code: int | None
    code: str | None
    message: str
    request_id: str | None = None
    client_request_id: str | None = None


class GraphError(MigrateBotError):
    """A Graph call failed. ``info`` carries the HTTP status, Graph code and correlation ids."""

    hint = "Try again later."

    def __init__(self, info: GraphErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info

    @property
    def status_code(self) -> int | None:
        return self.info.status_code

    @property
    def code(self) -> str | None:
        return self.info.code

    @property
    def request_id(self) -> str | None:
        return self.info.request_id

    @property
    def client_request_id(self) -> str | None:
        return self.info.client_request_id

    def correlation(self) -> str:
        """``request-id … client-request-id …`` for support tickets."""
        parts = []
        if self.info.request_id:
            parts.append(f"request-id {self.info.request_id}")
        if self.info.client_request_id:
            parts.append(f"client-request-id {self.info.client_request_id}")
        return ", ".join(parts)

    def __str__(self) -> str:
        status = f"HTTP {self.info.status_code}" if self.info.status_code else "no HTTP answer"
        code = f" {self.info.code}" if self.info.code else ""
        corr = f" ({self.correlation()})" if self.correlation() else ""
        return f"Graph {status}{code}: {self.info.message}{corr}"


class GraphNotFound(GraphError):
    hint = "Check the job id: Graph does not know this job in the target tenant."


class GraphConflict(GraphError):
    """409: the job's status does not allow the action, or its validation expired."""

    def __init__(self, info: GraphErrorInfo, reason: ConflictReason) -> None:
        super().__init__(info)
        self.reason = reason

    @property
    def hint(self) -> str:  # type: ignore[override]
        if self.reason is ConflictReason.VALIDATION_EXPIRED:
            return "The validation is older than 7 days: validate the job again, then migrate."
        return "The job's current status does not allow this action. Check its status and try again."


class GraphAuthError(GraphError):
    hint = (
        "The admin credential was refused. The signed-in admin may lack the Microsoft 365 Migration "
        "Administrator or Global Administrator role (or a PIM role is not active), or the app lacks "
        "CrossTenantContentMigration.ReadWrite.All."
    )


class GraphThrottled(GraphError):
    hint = "Microsoft Graph is throttling requests. Wait a minute and try again."

    def __init__(self, info: GraphErrorInfo, retry_after: float | None = None) -> None:
        super().__init__(info)
        self.retry_after = retry_after


class GraphUnavailable(GraphError):
    hint = "Microsoft Graph is unavailable or did not answer in time. Try again in a few minutes."


class GraphBadRequest(GraphError):
    hint = "Graph rejected the request as invalid."


class GraphActionOutcomeUnknown(GraphUnavailable):
    """validate/migrate/cancel got no clear answer and the job could not be re-read: it may or may not have run."""

    hint = (
        "Graph did not confirm the action and the job could not be read back, so it may or may not have "
        "been applied. Check the job's status before trying again."
    )


class BatchConflict(GraphConflict):
    """Users of the job are already in another active batch (Microsoft allows one active batch per user). Raised by
    the bot before calling ``migrate``; ``info.message`` names the other job and the users."""

    def __init__(self, info: GraphErrorInfo) -> None:
        super().__init__(info, ConflictReason.UNKNOWN)

    @property
    def hint(self) -> str:  # type: ignore[override]
        return "Remove these users from one of the batches (or wait until the other batch ends), then try again."
