"""Block Kit builders for what the poller posts: status replies, the root card, notes, the final notice, the DM.

Pure functions of data. Everything that comes from Graph (names, statuses, messages, error codes) or from people
(reasons) is escaped with :mod:`bot.slack.mrkdwn`; every builder returns ``(text, blocks)`` so a top-level ``text``
always goes with the blocks (notifications, screen readers). Block Kit limits: at most 50 blocks per message,
3000 characters per section text, 2000 per field, 10 fields per section.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.graph.models import JobStatus, MigrationJob, MigrationTask, ServiceStatus
from bot.slack.mrkdwn import date, escape, plain, safe, truncate, user
from bot.ui.modal import (
    SECTION_MAX,
    cancel_button,
    cancel_offered,
    context,
    fields,
    section,
    validate_button,
)

MAX_BLOCKS = 50
TEXT_MAX = 3000  # top-level text: Slack allows 40k; notifications show far less
MESSAGE_MAX = 1500  # a Graph message quoted in a reply
FAILED_USERS_SHOWN = 10
ERROR_TEXT_MAX = 300  # one error message of one user
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_WRAPPED = re.compile(r"^<(?:@|!subteam\^)([A-Z0-9]+)(?:\|[^>]*)?>$")

#: Service statuses that count as a failure of that workload for the user.
FAILED_SERVICE = frozenset({ServiceStatus.FAILED, ServiceStatus.ERROR, ServiceStatus.INVALID})


# Small helpers
def admin_mentions(raw: str | None) -> str:
    """``ADMIN_MENTION`` as Slack mentions: a user group id ``S…`` becomes ``<!subteam^S…>``, user ids
    ``U…``/``W…`` (comma-separated) become ``<@U…>``. Anything else is dropped, so the setting can't inject
    ``<!channel>`` or links. Empty when nothing valid is configured."""
    if not raw:
        return ""
    mentions = []
    for token in raw.split(","):
        token = token.strip()
        wrapped = _WRAPPED.match(token)
        if wrapped:
            token = wrapped.group(1)
        if not _SLACK_ID.match(token):
            continue
        if token.startswith("S"):
            mentions.append(f"<!subteam^{token}>")
        elif token[0] in "UW":
            mentions.append(f"<@{token}>")
    return " ".join(dict.fromkeys(mentions))


def duration(delta: timedelta | None) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``."""
    if delta is None:
        return "—"
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def code(value: object, limit: int = 100) -> str:
    """An escaped inline code span (backticks inside would end the span early, so they become quotes)."""
    cleaned = str(value).replace("`", "'")
    return f"`{safe(cleaned, limit)}`"


def _finish(text: str, blocks: list[dict]) -> tuple[str, list[dict]]:
    return truncate(text, TEXT_MAX), blocks[:MAX_BLOCKS]


def _quote(message: str, limit: int = MESSAGE_MAX) -> str:
    """A Graph message as an escaped block quote."""
    return "\n".join(f"> {line}" for line in safe(message, limit).splitlines() or [""])


def _noun(action: str) -> str:
    return {"validate": "Validation", "cancel": "Cancellation"}.get(action, "Migration")


# Status reply in the thread
def status_reply(
    *,
    job_name: str,
    old_status: str | None,
    new_status: str,
    message: str,
    at: datetime | None,
    offline: bool = False,
    via: str | None = None,
    admin_mention: str = "",
) -> tuple[str, list[dict]]:
    """One thread reply for a change: ``old -> new`` (or only the message), Graph's message, the time.

    ``offline``: the bot was down, so this sums up everything it missed. ``via``: a status that was seen but
    never posted (a post failed meanwhile). ``admin_mention``: already-built mentions (:func:`admin_mentions`).
    """
    status_changed = old_status != new_status
    when = f" at {date(at)}" if at is not None else ""
    if status_changed:
        path = [code(old_status or "unknown")]
        if via and via not in (old_status, new_status):
            path.append(code(via))
        path.append(code(new_status))
        arrow = " → ".join(path)
        lead = (
            f":zzz: *While I was offline:* {arrow}{when}"
            if offline
            else f":arrows_counterclockwise: *Status:* {arrow}{when}"
        )
        text = f"{escape(job_name)}: {escape(old_status or 'unknown')} -> {escape(new_status)}"
        if offline:
            text = f"While I was offline: {text}"
    else:
        lead = (
            f":zzz: *While I was offline* Graph's message changed; status still {code(new_status)}{when}"
            if offline
            else f":speech_balloon: *Update:* status still {code(new_status)}{when}"
        )
        text = f"{escape(job_name)}: {escape(new_status)} (new message)"
    blocks = [section(lead)]
    if message:
        blocks.append(section(f"*Graph says:*\n{_quote(message)}"))
    status = JobStatus.parse(new_status)
    if status is JobStatus.ADMIN_ACTION_REQUIRED:
        who = admin_mention or "An admin"
        blocks.append(
            section(
                f":rotating_light: {who}: this job needs an admin's action. Open the migration batch "
                "in the Microsoft 365 admin center (Migration) and resolve what it asks for; "
                "I keep following the job."
            )
        )
        text = f"{text}. Admin action required"
    elif status is JobStatus.CUTTING_OVER and status_changed:
        blocks.append(
            section(
                ":twisted_rightwards_arrows: *Users are now being cut over* to the target tenant: "
                "mailboxes switch first, then OneDrive and Teams. Expect short interruptions for "
                "the users in this batch. The job can no longer be cancelled."
            )
        )
        text = f"{text}. Users are now being cut over"
    elif status is JobStatus.UNKNOWN_FUTURE_VALUE:
        blocks.append(
            context("Graph reports a status this bot does not know; it is shown as Graph sent it and I keep polling.")
        )
    return _finish(text, blocks)


# Root card (chat.update of the run's root message)
def root_card(
    *,
    job_name: str,
    job_id: str,
    requester_id: str,
    reason: str,
    started_at: datetime | None,
    now: datetime,
    status: str,
    message: str = "",
    approver_id: str | None = None,
    action: str = "migrate",
    finished: bool = False,
    cutover: datetime | None = None,
) -> tuple[str, list[dict]]:
    """The run's root message with the current status and the elapsed time (or the duration when finished), and
    the cutover time (``<!date>``: each reader's own time zone) when known.
    A migration that can still be cancelled keeps its Cancel button (see :func:`bot.ui.modal.cancel_offered`)."""
    noun = _noun(action)
    elapsed = duration(now - started_at) if started_at else "—"
    pairs = [
        ("Job id", f"`{escape(job_id)}`"),
        ("Status", code(status)),
        ("Started by", user(requester_id)),
        ("Started", date(started_at)),
        ("Took" if finished else "Running for", f"{elapsed} (as of {date(now)})" if not finished else elapsed),
    ]
    if finished:
        pairs.append(("Ended", date(now)))
    if cutover is not None:
        pairs.append(("Cutover not before", date(cutover)))
    if approver_id:
        pairs.append(("Approved by", user(approver_id)))
    state = "ended" if finished else "running"
    blocks = [
        {"type": "header", "text": plain(f"{noun}: {truncate(job_name, 130)}", 150)},
        *fields(pairs),
    ]
    if reason:
        blocks.append(section(f"*Reason:* {safe(reason, 2900)}"))
    if message:
        blocks.append(context(f"*Graph says:* {safe(message, 2500)}"))
    blocks.append(context("The outcome is in this thread." if finished else "Status updates follow in this thread."))
    if cancel_offered(action, status, finished=finished):
        blocks.append({"type": "actions", "block_id": "run_actions", "elements": [cancel_button(job_id)]})
    text = f"{noun} {state}: {escape(job_name)} ({escape(job_id)}), status {escape(status)}, {elapsed}"
    return _finish(text, blocks)


def root_message(
    *,
    job: MigrationJob,
    requester_id: str,
    reason: str,
    started_at: datetime,
    status: str,
    approver_id: str | None = None,
    action: str = "migrate",
) -> tuple[str, list[dict]]:
    """The run's root message as the run starts: :func:`root_card` at its first moment."""
    return root_card(
        job_name=job.name,
        job_id=job.id,
        requester_id=requester_id,
        reason=reason,
        started_at=started_at,
        now=started_at,
        status=status,
        message=job.message or "",
        approver_id=approver_id,
        action=action,
        cutover=job.complete_after,
    )


# Trouble, recovery, staleness
def trouble_note(
    *, failures: int, error_text: str, auth: bool, status: str | None, admin_mention: str = ""
) -> tuple[str, list[dict]]:
    """Posted once after several failed polls in a row. ``auth``: the admin credential was refused."""
    if auth:
        who = f"{admin_mention} " if admin_mention else ""
        lead = (
            f":closed_lock_with_key: {who}*The bot's admin credential needs attention:* Microsoft Graph "
            f"refused it {failures} times in a row, so I can't see this job.\n*Next step:* an operator runs "
            "`migrate-bot login` on the bot's host (and checks the admin still holds the Migration "
            "Administrator or Global Administrator role)."
        )
        text = "The bot's admin credential needs attention: run migrate-bot login"
    else:
        lead = (
            f":warning: *I can't reach Microsoft Graph for this job* ({failures} failed polls in a row). "
            "The migration itself is not affected; I keep retrying with backoff and will say here when it "
            "works again."
        )
        text = f"Can't reach Microsoft Graph for this job ({failures} failed polls in a row)"
    blocks = [
        section(lead),
        context(f"Last error: {safe(error_text, 1000)}" + (f" · last known status {code(status)}" if status else "")),
    ]
    return _finish(text, blocks)


def recovered_note(*, failures: int, status: str) -> tuple[str, list[dict]]:
    lead = f":white_check_mark: *Microsoft Graph answers again.* Status {code(status)}."
    if failures:
        lead += f" ({failures} failed polls before this one.)"
    return _finish(f"Microsoft Graph answers again; status {escape(status)}", [section(lead)])


def stale_note(
    *, since: timedelta, last_update: datetime | None, status: str, admin_mention: str = ""
) -> tuple[str, list[dict]]:
    who = f"{admin_mention} " if admin_mention else ""
    lead = (
        f":hourglass: {who}*No progress reported for {duration(since)}.* Graph's last update of this job was "
        f"{date(last_update)}; status {code(status)}. The job may be stuck: check the batch in the Microsoft 365 "
        "admin center. I keep following it and won't repeat this warning until it moves again."
    )
    return _finish(f"No progress reported for {duration(since)}; status {escape(status)}", [section(lead)])


# Tasks (the users collection) summed up
@dataclass(frozen=True)
class FailedWorkload:
    service: str
    status: str
    errors: tuple[tuple[str, str], ...]  # (code, message)
    message: str = ""


@dataclass(frozen=True)
class FailedUser:
    user_id: str
    workloads: tuple[FailedWorkload, ...]
    upn: str | None = None  # the user principal name, when the directory could tell


@dataclass
class TaskSummary:
    """Counts per workload and status, and the users with at least one failed workload."""

    users: int = 0
    by_workload: dict[str, Counter] = field(default_factory=dict)
    failed_users: list[FailedUser] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failed_users)

    @property
    def ok(self) -> int:
        return self.users - self.failed

    def line(self) -> str:
        """``50 users: 47 without errors, 3 with errors`` (plain words, nothing from Graph)."""
        if not self.users:
            return "no users reported"
        if not self.failed:
            return f"{self.users} users, none with errors"
        return f"{self.users} users: {self.ok} without errors, {self.failed} with errors"


def summarize_tasks(tasks: Iterable[MigrationTask]) -> TaskSummary:
    summary = TaskSummary()
    for task in tasks:
        summary.users += 1
        failed: list[FailedWorkload] = []
        for detail in task.current_status:
            service = detail.service or "unknown"
            label = (
                detail.raw_status
                if detail.status is ServiceStatus.UNKNOWN_FUTURE_VALUE and detail.raw_status
                else detail.status.value
            )
            summary.by_workload.setdefault(service, Counter())[label] += 1
            if detail.status in FAILED_SERVICE or detail.errors:
                errors = tuple((e.code or "", e.message or "") for e in detail.errors)
                failed.append(FailedWorkload(service, label, errors, detail.message or ""))
        if failed:
            summary.failed_users.append(FailedUser(task.id, tuple(failed)))
    return summary


def with_names(summary: TaskSummary, names: dict[str, str]) -> TaskSummary:
    """``summary`` with each failed user's UPN from ``names`` (object id, lower case -> UPN)."""
    named = [replace(user_, upn=names.get(user_.user_id.lower(), user_.upn)) for user_ in summary.failed_users]
    return replace(summary, failed_users=named)


def workload_fields(summary: TaskSummary) -> list[tuple[str, str]]:
    pairs = []
    for service in sorted(summary.by_workload, key=str.lower):
        counts = summary.by_workload[service]
        value = " · ".join(
            f"{escape(status)} {count}"
            for status, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        )
        pairs.append((safe(service, 100), value))
    return pairs


def workload_blocks(summary: TaskSummary) -> list[dict]:
    """Per-workload status counts as field sections (10 fields each) under one heading."""
    blocks = fields(workload_fields(summary))
    blocks[0]["text"] = {"type": "mrkdwn", "text": "*Users per workload and status*"}
    return blocks


def failed_user_blocks(summary: TaskSummary, limit: int, label: str = "Users with errors") -> list[dict]:
    """The first ``limit`` users with errors (workload, code, message), the rest counted, in whole sections."""
    shown = summary.failed_users[:limit]
    more = summary.failed - len(shown)
    title = f"*{label}* ({len(shown)} of {summary.failed})" if more > 0 else f"*{label}* ({summary.failed})"
    items = [failed_user_lines(u) for u in shown]
    if more > 0:
        items.append(f"…and {more} more users with errors (see the batch in the Microsoft 365 admin center).")
    return pack_sections(title, items)


def failed_user_lines(user_: FailedUser) -> str:
    if user_.upn:
        lines = [f"• {safe(user_.upn, 120)} (`{safe(user_.user_id, 100)}`)"]
    else:
        lines = [f"• `{safe(user_.user_id, 100)}`"]
    for workload in user_.workloads:
        head = f"    *{safe(workload.service, 50)}* {code(workload.status, 40)}"
        if workload.errors:
            for error_code, error_message in workload.errors[:3]:
                lines.append(f"{head} {code(error_code or 'no code', 60)}: {safe(error_message, ERROR_TEXT_MAX)}")
            if len(workload.errors) > 3:
                lines.append(f"    …and {len(workload.errors) - 3} more errors")
        else:
            lines.append(f"{head}: {safe(workload.message or 'no error details', ERROR_TEXT_MAX)}")
    return "\n".join(lines)


def pack_sections(title: str, items: list[str]) -> list[dict]:
    """Sections of whole items, each section under the 3000-character limit."""
    blocks: list[dict] = []
    current = title
    for item in items:
        item = truncate(item, SECTION_MAX - 200)
        if len(current) + 1 + len(item) > SECTION_MAX - 50:
            blocks.append(section(current))
            current = item
        else:
            current = f"{current}\n{item}" if current else item
    if current:
        blocks.append(section(current))
    return blocks


# The final notice and the DM
_OUTCOMES = {
    "completed": (":white_check_mark:", "completed"),
    "completedWithErrors": (":warning:", "completed with errors"),
    "failed": (":x:", "failed"),
    "cancelled": (":no_entry_sign:", "was cancelled"),
    "deleted": (":wastebasket:", "ended: the job was deleted"),
    "vanished": (":grey_question:", "ended: the job no longer exists"),
}


_ACTION_OUTCOMES = {
    ("validate", "validatePassed"): (":white_check_mark:", "passed"),
    ("validate", "validateFailed"): (":x:", "failed: some users are invalid"),
    ("validate", "cancelled"): (":no_entry_sign:", "ended: the job was cancelled"),
    ("cancel", "cancelled"): (":no_entry_sign:", "succeeded: the job is cancelled"),
}


def outcome_words(outcome: str, action: str = "migrate") -> tuple[str, str]:
    """``(emoji, words)`` for an outcome of ``action``; unknown outcomes are shown as they came (escaped)."""
    if (action, outcome) in _ACTION_OUTCOMES:
        return _ACTION_OUTCOMES[(action, outcome)]
    if action == "cancel" and outcome != "vanished":
        return (":warning:", f"did not stop the job: it ended with status {code(outcome)}")
    return _OUTCOMES.get(outcome, (":checkered_flag:", f"ended with status {code(outcome)}"))


def _next_step(action: str, outcome: str, job_id: str) -> tuple[str, list[dict]]:
    """What to do after a validation: (mrkdwn, buttons)."""
    if action != "validate":
        return "", []
    if outcome == "validatePassed":
        return (f"*Next step:* start the migration within 7 days with `/migrate {escape(job_id)}`.", [])
    if outcome == "validateFailed":
        return (
            "*Next step:* fix the invalid users (their errors are above), then validate again with "
            f"`/migrate validate {escape(job_id)}`.",
            [validate_button(job_id, "Validate again")],
        )
    return "", []


def final_notice(
    *,
    job_name: str,
    job_id: str,
    outcome: str,
    message: str,
    requester_id: str,
    started_at: datetime | None,
    ended_at: datetime,
    summary: TaskSummary | None,
    run_id: int,
    action: str = "migrate",
    max_failed_users: int = FAILED_USERS_SHOWN,
) -> tuple[str, list[dict]]:
    """The one broadcast reply when the job ends: outcome, duration, users per workload and status, the first
    users with errors (workload, code, message) and how many more. ``summary`` None: no user details."""
    emoji, words = outcome_words(outcome, action)
    noun = _noun(action)
    took = duration(ended_at - started_at) if started_at else "—"
    blocks: list[dict] = [section(f"{emoji} *{noun} of {safe(job_name, 500)} {words}.*")]
    if outcome == "vanished":
        blocks.append(
            section(
                "Microsoft Graph no longer knows this job (HTTP 404): it was deleted or is no longer "
                "visible to the bot's admin, so I stopped following it."
            )
        )
    pairs = [("Outcome", code(outcome)), ("Took", took), ("Started by", user(requester_id)), ("Ended", date(ended_at))]
    if summary is not None:
        pairs.append(("Users", escape(summary.line())))
    blocks += fields(pairs)
    if message:
        blocks.append(section(f"*Graph says:*\n{_quote(message)}"))
    if summary is not None and summary.by_workload:
        blocks += workload_blocks(summary)
    elif summary is None and outcome != "vanished":
        blocks.append(context("User details were not available from Graph."))
    if summary is not None and summary.failed_users:
        label = "Invalid users and their errors" if action == "validate" else "Users with errors"
        blocks += failed_user_blocks(summary, max_failed_users, label)
        if outcome in ("completedWithErrors", "failed") and action == "migrate":
            blocks.append(context("Running `/migrate` on this job again retries only the users who did not finish."))
    step, buttons = _next_step(action, outcome, job_id)
    if step:
        blocks.append(section(step))
    if buttons:
        blocks.append({"type": "actions", "block_id": "next_step", "elements": buttons})
    blocks.append(context(f"Job `{escape(job_id)}` · run {run_id}"))
    text = f"{noun} of {escape(job_name)} {_plain_words(words)} (took {took})"
    if summary is not None:
        text += f": {summary.line()}"
    # Keep the last (reference) block when trimming to the limit.
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1] + [blocks[-1]]
    return _finish(text, blocks)


def _plain_words(words: str) -> str:
    return words.replace("`", "")


def requester_dm(
    *,
    job_name: str,
    outcome: str,
    took: str,
    where: str,
    summary_line: str | None,
    action: str = "migrate",
    channel_unavailable: str | None = None,
) -> tuple[str, list[dict]]:
    """The DM to the requester. ``where`` is mrkdwn from :func:`bot.slack.web.permalink` (a link or a channel).
    ``channel_unavailable``: the channel id when the notice could not be posted there."""
    emoji, words = outcome_words(outcome, action)
    noun = _noun(action)
    lead = f"{emoji} Your {noun.lower()} of *{safe(job_name, 500)}* {words} (took {took})."
    if summary_line:
        lead += f"\n{escape(summary_line)}."
    if channel_unavailable:
        lead += (
            f"\nI could not post the outcome in <#{escape(channel_unavailable)}>: invite me there with "
            "`/invite @migrate-bot` to get the updates of your next runs in the channel."
        )
    else:
        lead += f"\nDetails: {where}."
    text = f"Your {noun.lower()} of {escape(job_name)} {_plain_words(words)} (took {took})"
    return _finish(text, [section(lead)])
