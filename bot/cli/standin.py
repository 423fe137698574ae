"""``migrate-bot slack-standin``: serve the Slack Web API stand-in until Ctrl-C (rehearsals, compose.yaml)."""

from __future__ import annotations

import argparse
import threading

from bot.rehearsal.slack_standin import SlackStandIn
from bot.slack.scopes import BOT_SCOPES


def standin_command(args: argparse.Namespace, settings: object = None) -> int:
    """Print the API URL to give the bot, then serve until interrupted."""
    standin = SlackStandIn(bot_token=args.bot_token, scopes=BOT_SCOPES)
    for channel in args.channel or []:
        standin.add_channel(channel, channel.lower())
    standin.start(args.host, args.port)
    try:
        print(f"Slack stand-in on {standin.url}; point the bot at it: SLACK_API_URL={standin.api_url}", flush=True)
        stop = threading.Event()
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        standin.stop()
    return 0
