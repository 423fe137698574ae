"""``migrate-bot simulator``: serve the Graph simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from bot.config import Settings
from bot.rehearsal.simulator.seed import SEED_JOBS
from bot.rehearsal.simulator.state import SimClock, SimOptions
from bot.rehearsal.simulator.tokens import PRESETS
from bot.rehearsal.simulator.wsgi import GraphSimulator

#: ``--lax`` choices: the SimOptions field each one turns to the permissive reading.
LAX = {
    "revalidate-expired": ("revalidate_expired", True),
    "cancel-in-progress": ("cancel_in_progress", True),
    "past-complete-after": ("reject_past_complete_after", False),
    "app-only-actions": ("app_only_actions", True),
}


def simulator_options(lax: list[str]) -> SimOptions:
    """The simulator's options: strict readings, except those named in ``lax``."""
    return SimOptions(**dict(LAX[name] for name in lax))


def simulator_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the base URL, a token per role and the seeded jobs, then serve in the background until interrupted."""
    options = simulator_options(getattr(args, "lax", []))
    sim = GraphSimulator(clock=SimClock(speed=args.speed), seed=not args.no_seed, token=args.token, options=options)
    sim.start(args.host, args.port)
    try:
        print(f"Graph simulator on {sim.base_url} and {sim.v1_url} ({args.speed:g} simulated seconds per second)")
        print(f"Point the bot at it:  GRAPH_BASE_URL={sim.base_url}")
        lax = ", ".join(getattr(args, "lax", [])) or "none (every documented contradiction read strictly)"
        print(f"Permissive readings (--lax): {lax}")
        print("Bearer tokens (GRAPH_STATIC_TOKEN=...; valid for 24 h, signed by this simulator only):")
        for name, preset in PRESETS.items():
            print(f"  {name:<16} {preset.what}")
            print(f"    {sim.mint_token(name)}")
        if args.token:
            print("  --token          the static token you gave: a full-rights delegated admin")
        if not args.no_seed:
            print("Seeded jobs:")
            for job in SEED_JOBS:
                print(f"  {job.id}  {job.display_name:<18} {job.status:<15} {job.summary}")
        print(
            f"Control API: {sim.url}/_sim/ (GET jobs, requests, clock; POST jobs/<id>/outcome, jobs/<id>/status, "
            "faults, deny, latency, clock/advance, tokens)"
        )
        print("Ctrl-C to stop.", flush=True)
        stop = threading.Event()
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        sim.stop()
    return 0
