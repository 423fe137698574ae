"""``migrate-bot simulator``: serve the Graph simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from bot.config import Settings
from bot.rehearsal.simulator.seed import SEED_JOBS
from bot.rehearsal.simulator.state import SimClock
from bot.rehearsal.simulator.wsgi import GraphSimulator


def simulator_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the base URL and the seeded jobs, then serve in the background until interrupted."""
    sim = GraphSimulator(clock=SimClock(speed=args.speed), seed=not args.no_seed, token=args.token)
    sim.start(args.host, args.port)
    try:
        auth = "only the --token bearer token" if args.token else "any bearer token"
        print(f"Graph simulator on {sim.base_url} ({args.speed:g} simulated seconds per second; {auth})")
        print(f"Point the bot at it:  GRAPH_BASE_URL={sim.base_url}")
        if not args.no_seed:
            print("Seeded jobs:")
            for job in SEED_JOBS:
                print(f"  {job.id}  {job.display_name:<18} {job.status:<15} {job.summary}")
        print(
            f"Control API: {sim.url}/_sim/ (GET jobs, requests, clock; POST jobs/<id>/outcome, jobs/<id>/status, "
            "faults, deny, latency, clock/advance)"
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
