"""Parsing of the ``/migrate`` command text. Pure: no Slack, no Graph.

``/migrate <jobId>`` (migrate), ``status <jobId>``, ``list``, ``validate <jobId>``, ``cancel <jobId>``,
``whoami`` and ``help``. The listener in :mod:`handlers.commands` routes on :attr:`ParsedCommand.kind`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import InvalidJobId
from bot.graph.models import parse_job_id
from bot.slack.mrkdwn import escape, truncate
from bot.ui.modal import USAGE

MAX_TEXT = 200
HELP_WORDS = frozenset({"help", "-h", "--help", "?"})
#: Subcommands that act on one job: ``/migrate <word> <jobId>``.
JOB_SUBCOMMANDS = frozenset({"status", "validate", "cancel"})
#: Subcommands without arguments.
PLAIN_SUBCOMMANDS = frozenset({"list", "whoami"})


@dataclass(frozen=True)
class ParsedCommand:
    kind: str  # "help" | "migrate" | "status" | "list" | "validate" | "cancel" | "whoami" | "invalid"
    job_id: str | None = None
    error: str | None = None


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
    if first in JOB_SUBCOMMANDS:
        if len(words) == 1:
            return ParsedCommand("invalid", error=f"`/migrate {first}` needs a job id: `/migrate {first} <jobId>`.")
        if len(words) > 2:
            return ParsedCommand("invalid", error=f"`/migrate {first}` takes a single job id.")
        return _with_job(first, words[1])
    if len(words) > 1:
        return ParsedCommand("invalid", error="`/migrate` takes a single job id.")
    return _with_job("migrate", words[0])


def _with_job(kind: str, word: str) -> ParsedCommand:
    try:
        return ParsedCommand(kind, job_id=parse_job_id(word))
    except InvalidJobId as error:
        shown = escape(truncate(word, 60))
        return ParsedCommand("invalid", error=f"`{shown}` is not a job id. {error}")


def usage_reply(error: str | None = None) -> str:
    return f":x: {error}\n{USAGE}" if error else USAGE


__all__ = ["ParsedCommand", "parse_command", "usage_reply", "MAX_TEXT"]
