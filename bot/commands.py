"""Parsing of the ``/migrate`` command text. Pure: no Slack, no Graph."""

from __future__ import annotations

from dataclasses import dataclass

from bot.blocks import USAGE
from bot.errors import InvalidJobId
from bot.jobs import parse_job_id
from bot.mrkdwn import escape, truncate

MAX_TEXT = 200


@dataclass(frozen=True)
class ParsedCommand:
    kind: str  # "help" | "migrate" | "invalid"
    job_id: str | None = None
    error: str | None = None


def parse_command(text: str | None) -> ParsedCommand:
    """``""``/``help`` → help; a GUID → migrate; anything else → invalid with a message for the person."""
    words = (text or "").split()
    if not words or words[0].lower() in {"help", "-h", "--help", "?"}:
        return ParsedCommand("help")
    if len(words) > 1:
        return ParsedCommand("invalid", error="`/migrate` takes a single job id.")
    try:
        return ParsedCommand("migrate", job_id=parse_job_id(words[0]))
    except InvalidJobId as error:
        shown = escape(truncate(words[0], 60))
        return ParsedCommand("invalid", error=f"`{shown}` is not a job id. {error}")


def usage_reply(error: str | None = None) -> str:
    return f":x: {error}\n{USAGE}" if error else USAGE


__all__ = ["ParsedCommand", "parse_command", "usage_reply", "MAX_TEXT"]
