"""Sentences for people: what went wrong and what to do next."""

from __future__ import annotations

from bot.errors import (
    NO_REVALIDATION,
    BatchConflict,
    ConflictReason,
    CredentialError,
    GraphActionOutcomeUnknown,
    GraphAuthError,
    GraphConflict,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    GraphUnavailable,
)
from bot.graph.models import JobStatus
from bot.slack.mrkdwn import escape
from bot.slack.web import answer_lost, slack_error


def describe_graph_error(error: GraphError) -> tuple[str, str]:
    """A short title and the next step for a Graph failure (mrkdwn; nothing from Graph in the title)."""
    if isinstance(error, GraphNotFound):
        return ("Job not found", "Check the job id: it must be a cross-tenant migration job of the target tenant.")
    if isinstance(error, GraphConflict):
        if error.reason is ConflictReason.VALIDATION_EXPIRED:
            return ("Validation expired", f"{NO_REVALIDATION} Cancel it with `/migrate cancel <jobId>`.")
        return (
            "The job's status does not allow this",
            "Check the job's status with `/migrate status <jobId>` and try again when it allows it.",
        )
    if isinstance(error, GraphAuthError) and error.status_code == 401:
        return (
            "Microsoft Graph refused the admin's token",
            "The bot's admin credential needs attention (the token is missing, malformed or expired): an operator "
            "runs `migrate-bot login` on the bot's host, or replaces the static token.",
        )
    if isinstance(error, GraphAuthError):
        return (
            "Microsoft Graph refused the admin credential",
            "Ask an operator to check the bot's admin: it needs the Microsoft 365 Migration Administrator or "
            "Global Administrator role (active, if PIM) and consent for CrossTenantContentMigration.ReadWrite.All "
            "(Read.All allows only reads). With an application credential: some Graph pages say validate and "
            "migrate are not supported app-only, so use the delegated admin sign-in.",
        )
    if isinstance(error, GraphActionOutcomeUnknown):
        return (
            "Microsoft Graph did not confirm the action",
            "It may or may not have been applied: check the job with `/migrate status <jobId>` before trying again.",
        )
    if isinstance(error, GraphThrottled):
        return ("Microsoft Graph is throttling requests", "Wait a minute and try again.")
    if isinstance(error, GraphUnavailable):
        return ("Microsoft Graph did not answer", "Try again in a few minutes.")
    return ("Microsoft Graph rejected the request", "Check the job id and try again; if it persists, tell an operator.")


def graph_error_text(action: str, error: GraphError) -> str:
    """One ephemeral message for a failed Graph call (Graph's own text escaped)."""
    title, next_step = describe_graph_error(error)
    detail = escape(error.info.message)
    if error.correlation():
        detail += f" ({escape(error.correlation())})"
    return f":x: *Could not {action}: {title}.* {detail}\n*Next step:* {next_step}"


def credential_error_text(error: CredentialError) -> str:
    return (
        f":closed_lock_with_key: *The bot's admin credential needs attention.* {escape(str(error))}\n"
        "*Next step:* an operator runs `migrate-bot login` on the bot's host."
    )


def refusal_text(error: Exception, action: str = "start the migration") -> str:
    """The message for a Graph or credential error that stopped an action."""
    if isinstance(error, GraphError):
        return graph_error_text(action, error)
    if isinstance(error, CredentialError):
        return credential_error_text(error)
    return f":x: Could not {action}: {escape(str(error))}"


#: What each action is called in "Could not ...".
DOING = {"migrate": "start the migration", "validate": "start the validation", "cancel": "cancel the job"}


def action_refusal_text(action: str, error: Exception, job_id: str) -> str:
    """The message for a Graph or credential error that stopped ``action`` on ``job_id``; a 409 on cancel or
    validate is explained in plain words (what it means for the users and what to do)."""
    if isinstance(error, BatchConflict):
        return f":no_entry: *Can't start the migration:* {escape(error.info.message)}\n*Next step:* {error.hint}"
    if isinstance(error, GraphConflict) and action in ("cancel", "validate"):
        said = escape(error.info.message)
        if error.correlation():
            said += f" ({escape(error.correlation())})"
        job = error.job
        if action == "cancel" and job is not None and job.status in (JobStatus.PROCESSING, JobStatus.IN_PROGRESS):
            return (
                ":x: *Could not cancel the job: Microsoft Graph refused (409).* Graph documents that a job can't be "
                "cancelled once its migration is in progress, and this job is "
                f"`{escape(job.status_label)}`: content is syncing, no user has been cut over yet, and the "
                "migration continues; cutover starts after its completeAfterDateTime.\n"
                f"*Graph says:* {said}\n*Next step:* to keep users from moving, ask Microsoft support before "
                f"cutover; otherwise follow the job (`/migrate status {escape(job_id)}`)."
            )
        if action == "cancel":
            return (
                ":x: *Could not cancel the job: Microsoft Graph refused (409).* Cutover has already begun, or the "
                "job has ended, so the migration can no longer be stopped: it continues to its end. Users "
                f"already cut over stay migrated in the target tenant.\n*Graph says:* {said}\n"
                f"*Next step:* follow the job to its end (`/migrate status {escape(job_id)}`) and deal with any "
                "users that fail afterwards."
            )
        if error.reason is ConflictReason.VALIDATION_EXPIRED:
            return (
                ":x: *Could not start the validation: Microsoft Graph refused (409).* "
                f"{NO_REVALIDATION}\n*Graph says:* {said}\n"
                f"*Next step:* `/migrate cancel {escape(job_id)}`, then create a new job for the same users."
            )
        return (
            ":x: *Could not start the validation: Microsoft Graph refused (409).* Graph validates only jobs in "
            "`submitted` or `validateFailed`; this job's status does not allow it (an expired `validatePassed` "
            f"can't be validated again in this tenant).\n*Graph says:* {said}\n"
            f"*Next step:* check the job with `/migrate status {escape(job_id)}`; if its validation expired, "
            "create a new batch for these users."
        )
    return refusal_text(error, DOING.get(action, "act on the job"))


def cant_post_text(what: str, channel_id: str, code: str, next_step: str) -> str:
    """Why ``what`` is not in the channel; "invite me" only when Slack said the bot is not in it."""
    if code == "not_in_channel":
        return (
            f":warning: I can't post {what} in <#{channel_id}>: I'm not in the channel. "
            f"Invite me with `/invite @migrate-bot`; {next_step}"
        )
    return f":warning: Slack did not take {what} in <#{channel_id}> (`{escape(code)}`); {next_step}"


def not_recorded_text(what: str) -> str:
    """``what`` (e.g. "your approval") could not be recorded because the database refused the write."""
    return (
        f":warning: I could not record {what}: the bot's database refused the write, so nothing was done. "
        "Try again in a few minutes; if it keeps failing, tell the bot's operator (`migrate-bot check`)."
    )


def window_not_opened_text(error: Exception) -> str:
    """What the person is told when ``views.open`` / ``views.push`` failed or got no answer."""
    code = escape(slack_error(error))
    if answer_lost(error):
        return f":warning: Slack did not answer while opening the window (`{code}`). If it did not open, try again."
    return f":warning: Slack could not open the window (`{code}`). Try again."
