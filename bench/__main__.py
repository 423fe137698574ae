"""``python -m bench`` / ``migrate-bot bench``: run the benchmarks and print one table (see bench/README.md).

Three processes: this driver (sends the commands, times them, reads the records), the world (Graph simulator
and Slack stand-in, ``bench.world``) and the bot (``python -m bot run --http``, measured with psutil).
A scenario group is a function ``(world, workdir, config, report, bot_cpus)`` in :data:`SCENARIOS`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.options import add_arguments
from bench.processes import WorldProcess, cpu_plan
from bench.replica_scenario import replicas
from bench.report import Report, machine
from bench.scenarios import Config, ack_under_slow_graph, say
from bench.sweep_scenario import poller_at_scale
from bench.world import WorldClient

#: Scenario groups, run in this order; each starts its own bot against the shared world and adds figures.
SCENARIOS: dict[str, Callable[[WorldClient, Path, Config, Report, set[int] | None], None]] = {
    "ack": ack_under_slow_graph,
    "poller": poller_at_scale,
    "replicas": replicas,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    return add_arguments(parser)


def config_for(args: argparse.Namespace) -> Config:
    config = Config.quick() if getattr(args, "quick", False) else Config()
    for name in ("runs", "interval", "commands", "senders"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(config, name, value)
    config.database_url = getattr(args, "database_url", None) or os.environ.get("TEST_DATABASE_URL") or None
    if getattr(args, "graph_latency", None) is not None:
        config.graph_latency = args.graph_latency / 1000
    return config


def run(config: Config, *, workdir: Path, only: str | None = None, pin: bool = True) -> Report:
    """Start the world, run the scenarios, stop everything; the figures in a :class:`Report`.

    With ``pin`` (and at least 2 CPUs) the bot runs alone on one CPU and the world and this driver on the
    others, so the harness never takes CPU time, or the GIL-holding thread's CPU, from the bot.
    """
    plan = cpu_plan(pin)
    report = Report(
        meta={
            **machine(),
            "config": {key: value for key, value in config.__dict__.items() if key != "database_url"},
            "pinning": (f"bot on CPU {sorted(plan[0])}, world and driver on CPU {sorted(plan[1])}" if plan else "none"),
        }
    )
    started = time.monotonic()
    report.meta["load_before"] = _load()
    bot_cpus, harness_cpus = plan if plan else (None, None)
    previous = os.sched_getaffinity(0) if plan else None
    if harness_cpus:
        os.sched_setaffinity(0, harness_cpus)  # this thread, and the sender threads it starts
    try:
        world_process = WorldProcess(workdir / "world.log").start(cpus=harness_cpus)
        world = WorldClient(world_process.urls)
        try:
            for name, scenario in SCENARIOS.items():
                if only in (None, name):
                    scenario(world, workdir, config, report, bot_cpus)
        finally:
            world.close()
            world_process.stop()
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)
    report.meta["seconds"] = round(time.monotonic() - started, 1)
    report.meta["load_after"] = _load()
    return report


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on the machine shows in every figure."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def render(report: Report, *, quick: bool) -> str:
    meta = report.meta
    usable = f", {meta['cpus_usable']} usable" if meta.get("cpus_usable") not in (None, meta["cpu_count"]) else ""
    head = (
        f"migrate-bot benchmarks{' (quick)' if quick else ''}: {meta['cpu_count']} CPUs{usable}, "
        f"Python {meta['python']}, {meta['platform']}; took {meta['seconds']} s\n"
        f"pinning: {meta['pinning']}\n"
        f"load average (1, 5, 15 min): {meta.get('load_before')} before, {meta.get('load_after')} after"
    )
    skipped = f"\nscenario 5 (replicas) {meta['replicas']}" if meta.get("replicas") else ""
    return head + skipped + "\n\n" + report.table()


def bench_command(args: Any, settings: Any = None) -> int:
    """The ``migrate-bot bench`` entry point (``settings`` is not used: the benchmark brings its own world)."""
    config = config_for(args)
    keep = getattr(args, "keep", False)
    workdir = Path(tempfile.mkdtemp(prefix="migrate-bot-bench-"))
    try:
        report = run(config, workdir=workdir, only=getattr(args, "only", None), pin=not getattr(args, "no_pin", False))
    except Exception:
        say(f"failed; logs kept in {workdir}")
        raise
    else:
        if keep:
            say(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(report, quick=getattr(args, "quick", False)), flush=True)
    out = getattr(args, "json", None)
    if out is not None:
        Path(out).write_text(json.dumps(report.as_dict(), indent=2, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return bench_command(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
