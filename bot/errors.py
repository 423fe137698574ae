"""Exceptions raised by migrate-bot's own modules. Each carries a sentence a person can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


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
    """Why Graph answered 409, decided from the status code, the error code and the job read back (never from
    Graph's message, whose wording is undocumented)."""

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


#: What to do about an expired validation: Graph documents validate only from submitted or validateFailed.
NO_REVALIDATION = (
    "Graph offers no revalidation for this job: validate is accepted only from submitted or validateFailed, and "
    "migrate refuses a validation older than 7 days. Instead, cancel this job (no user has moved yet) and create "
    "a new job for the same users; validate it and start it within 7 days."
)


class GraphConflict(GraphError):
    """409: the job's status does not allow the action, or its validation expired. ``job`` is the job as read back
    after the refusal (a :class:`bot.graph.models.MigrationJob`), None when it could not be read."""

    def __init__(self, info: GraphErrorInfo, reason: ConflictReason, job: Any = None) -> None:
        super().__init__(info)
        self.reason = reason
        self.job = job

    @property
    def hint(self) -> str:  # type: ignore[override]
        if self.reason is ConflictReason.VALIDATION_EXPIRED:
            return NO_REVALIDATION
        return "The job's current status does not allow this action. Check its status and try again."


class GraphAuthError(GraphError):
    """401 (the token itself was refused: missing, malformed or expired) or 403 (a valid token without the
    permission or role the operation needs)."""

    @property
    def hint(self) -> str:  # type: ignore[override]
        if self.status_code == 401:
            return (
                "Graph refused the token itself (missing, malformed or expired): sign the admin in again "
                "(`migrate-bot login`) or replace the static token."
            )
        return (
            "The admin credential was refused. The signed-in admin may lack the Microsoft 365 Migration "
            "Administrator or Global Administrator role (or a PIM role is not active), or the app lacks "
            "CrossTenantContentMigration.ReadWrite.All (Read.All allows only reads). Some Graph pages say "
            "validate and migrate are not supported with app-only tokens: use the delegated admin sign-in."
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


class ServiceUnreachable(MigrateBotError):
    """A service the bot needs (Slack, the database) did not answer at start-up: exit 1, not a setting to fix."""


class BatchConflict(GraphConflict):
    """Users of the job are already in another active batch (Microsoft allows one active batch per user). Raised by
    the bot before calling ``migrate``; ``info.message`` names the other job and the users."""

    def __init__(self, info: GraphErrorInfo) -> None:
        super().__init__(info, ConflictReason.UNKNOWN)

    @property
    def hint(self) -> str:  # type: ignore[override]
        return "Remove these users from one of the batches (or wait until the other batch ends), then try again."
