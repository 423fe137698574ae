"""A Slack stand-in for tests, the demo and benchmarks.

* :class:`SlackStandIn` — a Web API fake (plus ``response_url`` endpoint) on a real HTTP server.
* :class:`SlackSender` — signed slash commands, button clicks and modal submissions to the bot.
* :func:`render_channel` / :func:`render_view` — what a person would read.
"""

from bot.rehearsal.slack_standin.api import SlackStandIn
from bot.rehearsal.slack_standin.records import Call, Channel, Ephemeral, Message, User, Usergroup
from bot.rehearsal.slack_standin.sender import SentRequest, SlackSender, sign
from bot.rehearsal.slack_standin.transcript import render_channel, render_view

__all__ = [
    "Call",
    "Channel",
    "Ephemeral",
    "Message",
    "SentRequest",
    "SlackSender",
    "SlackStandIn",
    "User",
    "Usergroup",
    "render_channel",
    "render_view",
    "sign",
]
