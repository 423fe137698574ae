"""The benchmark's command-line options, shared by ``python -m bench`` and ``migrate-bot bench`` (no heavy imports)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark options to ``parser`` and return it."""
    parser.add_argument("--quick", action="store_true", help="the CI smoke variant: fewer commands and runs, seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (databases, process logs)")
    parser.add_argument("--runs", type=int, default=None, help="scenario 2: RUNNING runs (None: 1000, quick: fewer)")
    parser.add_argument("--interval", type=float, default=None, help="scenario 2: poll interval in seconds")
    parser.add_argument("--commands", type=int, default=None, help="scenario 1: commands (None: 200, quick: fewer)")
    parser.add_argument("--senders", type=int, default=None, help="scenario 1: concurrent senders (None: 20)")
    parser.add_argument(
        "--graph-latency",
        type=float,
        default=None,
        help="scenarios 2-4: Graph's answer time in ms for every request and each $batch (None: 200)",
    )
    parser.add_argument("--only", choices=["ack", "poller", "replicas"], default=None, help="run one scenario group")
    parser.add_argument(
        "--database-url",
        default=None,
        help="scenario 5 (replicas): a PostgreSQL server URL (None: TEST_DATABASE_URL; neither: skipped)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="don't pin the bot to one CPU and the world and driver to the others"
    )
    return parser
