"""``migrate-bot demo``: the whole story on loopback, printed as the channel reads it.

No credentials and no network: the Graph simulator plays the tenant, the Slack stand-in plays Slack,
and the bot serves HTTP exactly as in production. Alice asks, Bob approves, the poller follows the
job on a fast clock to its end.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from bot.config import Settings
from bot.rehearsal.sandbox import APPROVER, CHANNEL, REQUESTER, Sandbox
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin.transcript import render_channel, render_view
from bot.store import FinalNotice, RunState
from bot.ui.approval import APPROVE_ACTION

SIM_SPEED = 480.0  # simulated seconds per real second: a ~30-minute migration takes a few seconds
TIMEOUT = 90.0


def run_demo(outcome: str = "completed", out: TextIO = sys.stdout, timeout: float = TIMEOUT) -> bool:
    """Play the story; True when the job ended with ``outcome`` and the final notice was posted."""
    say = lambda text="": print(text, file=out, flush=True)  # noqa: E731
    job_id = SEED_VALIDATE_PASSED
    with Sandbox(sim_speed=SIM_SPEED, settings={"poll_interval_seconds": 0.5}) as world:
        world.sim.set_outcome(job_id, outcome)
        say(f"Graph simulator: {world.sim.base_url}   Slack stand-in: {world.slack.api_url}")
        say(f"migrate-bot (HTTP mode): {world.server.url}/slack/events\n")

        say(f"1. @alice types `/migrate {job_id}` in #migrations")
        view = world.open_modal(job_id, user_id=REQUESTER)
        say("   The modal shows the live job:\n")
        say(_indent(render_view(world.slack, view["id"]), 5))

        say("\n2. Alice gives a reason and clicks [Request approval]")
        world.submit_modal(view, "CHG0012345: wave 3 finance cutover", user_id=REQUESTER)
        run = world.wait_until(
            lambda: (r := world.run_for(job_id)) and r.root_ts and r, timeout=15, what="the approval request"
        )

        say("   The bot posts an approval request in #migrations:\n")
        say(_indent(render_channel(world.slack, CHANNEL), 5))
        say("\n3. @bob (an approver; Alice can't approve her own request) clicks [Approve and start] and confirms")
        world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
        world.wait_until(
            lambda: world.run_for(job_id).state == RunState.RUNNING, timeout=15, what="the migration to start"
        )

        say(f"4. The migration runs; the poller follows it (simulated clock x{SIM_SPEED:g})…")
        started = time.monotonic()
        finished = world.wait_until(
            lambda: (
                (r := world.run_for(job_id)).state == RunState.FINISHED and r.final_notice == FinalNotice.SENT and r
            ),
            timeout=timeout,
            what="the final notice",
        )
        say(f"   Finished in {time.monotonic() - started:.1f} s of real time.\n")
        say("What #migrations shows:\n")
        say(render_channel(world.slack, CHANNEL))
        ok = finished.outcome == outcome
        say(f"\nDemo {'passed' if ok else 'FAILED'}: the job ended {finished.outcome} (asked: {outcome}).")
        return ok


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def demo_command(args: Any, settings: Settings | None) -> int:
    if not getattr(args, "verbose", False):  # the story is the output; the bot's own log only with -v
        logging.getLogger("bot").setLevel(logging.WARNING)
    try:
        return 0 if run_demo(getattr(args, "outcome", "completed")) else 1
    except TimeoutError as error:
        print(f"Demo failed: {error}", file=sys.stderr)
        return 1
