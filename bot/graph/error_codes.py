"""Per-user error codes of cross-tenant migration tasks: a one-line cause and the next step for each code.

Source: Microsoft, "Resolve errors during orchestrated migration (preview)",
https://learn.microsoft.com/troubleshoot/microsoft-365/admin/orchestrated-migration/resolve-orchestrated-migration-errors
(MicrosoftDocs/SupportArticles-docs, ``Microsoft365/admin/orchestrated-migration/resolve-orchestrated-migration-errors.md``,
revision of 2025-12-15). Only codes that page lists are here; any other code is shown as Graph sent it.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_URL = (
    "https://learn.microsoft.com/troubleshoot/microsoft-365/admin/orchestrated-migration/"
    "resolve-orchestrated-migration-errors"
)


@dataclass(frozen=True)
class ErrorHint:
    cause: str
    next_step: str


KNOWN_ERRORS: dict[str, ErrorHint] = {
    "MIGR-001": ErrorHint(
        "The tenants are not configured to support migration: the Organization Relationship is not set up properly.",
        "Edit the Organization Relationship to authorize the migration.",
    ),
    "MIGR-002": ErrorHint(
        "The user is not authorized to migrate: not a member of the source tenant's migration security group.",
        "Add the user to that security group in the source tenant, then retry.",
    ),
    "MIGR-003": ErrorHint(
        "The user's migration failed and must be retried.",
        "Retry the migration (`/migrate <jobId>` on the ended job retries the users who did not finish).",
    ),
    "MIGR-004": ErrorHint(
        "Authorization error: an Organization Relationship is misconfigured or the user is not in the "
        "authorized security group.",
        "Fix the Organization Relationships and/or add the user to the security group.",
    ),
    "EXCH-07": ErrorHint(
        "No valid migration endpoint for the remote tenant (a misspelled endpoint name, or none configured).",
        "Check the endpoint name in exchangeSettings; create a tenant-to-tenant migration endpoint if needed.",
    ),
    "EXCH-08": ErrorHint(
        "Setup validation failed (Test-MigrationServerAvailability): the mailbox is out of the migration scope "
        "or the source mailbox and target mail user do not match.",
        "Put the mailbox in the migration scope, set the scope in the Organization Relationship, fix the "
        "mail user, then validate again.",
    ),
}


def explain(code: str | None) -> ErrorHint | None:
    """The hint for a code this bot recognises (case-insensitive), else None: show the code as it came."""
    if not code:
        return None
    return KNOWN_ERRORS.get(code.strip().upper())
