"""Parsing of the ``/migrate`` command text. Pure: no Slack, no Graph.

``/migrate <jobId>`` (migrate), ``status <jobId>``, ``list``, ``validate <jobId>``, ``cancel <jobId>``,
``whoami`` and ``help``. The listener in :mod:`handlers.commands` routes on :attr:`ParsedCommand.kind`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.errors import InvalidJobId
from bot.graph.models import parse_job_id
from bot.graph.tasks import FILTERS, is_user_ref
from bot.slack.mrkdwn import escape, truncate
from bot.ui.modal import USAGE

MAX_TEXT = 200
HELP_WORDS = frozenset({"help", "-h", "--help", "?"})
#: Subcommands that act on one job: ``/migrate <word> <jobId>``.
JOB_SUBCOMMANDS = frozenset({"status", "validate", "cancel", "reschedule"})
#: Subcommands about a job's users, with what follows the job id.
USER_SUBCOMMANDS = {"users": "<jobId> [failed|all|<user>]", "remove": "<jobId> <user>"}
#: Subcommands without arguments.
PLAIN_SUBCOMMANDS = frozenset({"list", "whoami"})


@dataclass(frozen=True)
class ParsedCommand:
    kind: str  # "help" | "migrate" | "status" | "list" | "validate" | "cancel" | "whoami" | "invalid" | ...
    job_id: str | None = None
    error: str | None = None
    arg: str | None = None  # users: failed | all | <user>; remove: <user>


def parse_command(text: str | None) -> ParsedCommand:
    """``""``/``help`` → help; a GUID → migrate; ``<subcommand> [jobId]`` → that subcommand; anything else →
    invalid with a message for the person (what was typed is escaped and cut)."""
    words = (text or "").split()
    if not words or words[0].lower() in HELP_WORDS:
        return ParsedCommand("help")
    first = words[0].lower()
    if first in PLAIN_SUBCOMMANDS:
        if len(words) > 1:
            return ParsedCommand("invalid", error=f"`/migrate {first}` takes no arguments.")
        return ParsedCommand(first)
    if first in USER_SUBCOMMANDS:
        return _with_user(first, words)
    if first in JOB_SUBCOMMANDS:
        if len(words) == 1:
            return ParsedCommand("invalid", error=f"`/migrate {first}` needs a job id: `/migrate {first} <jobId>`.")
        if len(words) > 2:
            return ParsedCommand("invalid", error=f"`/migrate {first}` takes a single job id.")
        return _with_job(first, words[1])
    if len(words) > 1:
        return ParsedCommand("invalid", error="`/migrate` takes a single job id.")
    return _with_job("migrate", words[0])


def _with_user(kind: str, words: list[str]) -> ParsedCommand:
    """``users <jobId> [failed|all|<user>]`` and ``remove <jobId> <user>``; a user is an object id or a UPN."""
    hint = USER_SUBCOMMANDS[kind]
    if len(words) < 2 or len(words) > 3 or (kind == "remove" and len(words) != 3):
        return ParsedCommand("invalid", error=f"Use `/migrate {kind} {hint}`.")
    parsed = _with_job(kind, words[1])
    if parsed.kind == "invalid" or len(words) == 2:
        return replace(parsed, arg="all") if parsed.kind == "users" else parsed
    arg = words[2].lower() if words[2].lower() in FILTERS else words[2]
    if arg not in FILTERS and not is_user_ref(arg):
        shown = escape(truncate(arg, 60))
        return ParsedCommand(
            "invalid", error=f"`{shown}` is not a user: give the user's object id or UPN. Use `/migrate {kind} {hint}`."
        )
    if kind == "remove" and arg in FILTERS:
        return ParsedCommand("invalid", error=f"`/migrate remove` takes one user. Use `/migrate {kind} {hint}`.")
    return replace(parsed, arg=arg)


def _with_job(kind: str, word: str) -> ParsedCommand:
    try:
        return ParsedCommand(kind, job_id=parse_job_id(word))
    except InvalidJobId as error:
        shown = escape(truncate(word, 60))
        return ParsedCommand("invalid", error=f"`{shown}` is not a job id. {error}")


def usage_reply(error: str | None = None) -> str:
    return f":x: {error}\n{USAGE}" if error else USAGE


__all__ = ["ParsedCommand", "parse_command", "usage_reply", "MAX_TEXT"]
