"""Scenario 5: two replicas on one PostgreSQL database (acks spread over both, failover, shutdown).

The figures are described in bench/README.md. The group runs in a database of its own, created on the server
of ``--database-url`` (default: ``TEST_DATABASE_URL``) and dropped afterwards; without a URL it reports that
it was skipped and why.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.processes import BotProcess, FloorProcess
from bench.report import Figure, Report, percentile
from bench.scenarios import Config, bot_process, say, send_concurrently
from bench.sweep_scenario import insert_runs
from bench.world import WorldClient
from bot.graph.models import MigrationJob

ELECTED = r"elected leader"
ACK_P99_LIMIT = 0.050
SHUTDOWN_LIMIT = 10.0
#: RUNNING runs the leader polls, so that the new leader's first poll can be seen after a failover.
REPLICA_RUNS = 20


def replicas(world: WorldClient, workdir: Path, config: Config, report: Report, bot_cpus: set[int] | None) -> None:
    """Scenario 5 (PostgreSQL): acks over two replicas, failover after a SIGKILL, shutdown after a SIGTERM."""
    if not config.database_url:
        say("scenario 5 (replicas) skipped: it needs PostgreSQL; pass --database-url or set TEST_DATABASE_URL")
        report.meta["replicas"] = "skipped: no PostgreSQL URL (--database-url or TEST_DATABASE_URL)"
        return
    commands = 2 * config.commands
    say(
        f"scenario 5: two replicas on PostgreSQL; {commands} /migrate commands over both, "
        f"failover after SIGKILL of the leader, SIGTERM with {config.commands} commands queued"
    )
    world.set_latency(config.command_latency, batch_seconds=config.graph_latency)
    runs = [MigrationJob.model_validate(job) for job in world.create_jobs(REPLICA_RUNS, "inProgress", "replica")]
    run_ids = {job.id.lower() for job in runs}
    roots = world.post_roots(REPLICA_RUNS)
    command_jobs = [
        job["id"] for job in world.create_jobs(config.warmup_commands + commands, "validatePassed", "replica-ack")
    ]
    queued_jobs = [job["id"] for job in world.create_jobs(config.commands, "validatePassed", "replica-queued")]
    bots: list[BotProcess] = []
    code: int | None = None
    try:
        with _fresh_database(config.database_url) as url:
            leader = bot_process(world, workdir, "replica-a", config.interval, url).start(cpus=bot_cpus)
            bots.append(leader)
            leader.wait_log(ELECTED)
            insert_runs(url, runs, roots)
            follower = bot_process(world, workdir, "replica-b", config.interval, url).start(cpus=bot_cpus)
            bots.append(follower)
            urls = [leader.url, follower.url]

            send_concurrently(urls, world, command_jobs[: config.warmup_commands], 2)  # warm-up, not counted
            sent = send_concurrently(urls, world, command_jobs[config.warmup_commands :], config.senders)

            _wait_for_poll(world, run_ids, time.time(), config.interval + 5)  # the leader is polling the runs
            killed_at = time.time()
            leader.kill()
            dead_at = time.time()  # a request received after this is the follower's
            first_poll = _wait_for_poll(world, run_ids, dead_at, config.interval + 10)
            follower.wait_log(ELECTED)

            queued = send_concurrently(follower.url, world, queued_jobs, config.senders)
            stopping = time.monotonic()
            code = follower.terminate(SHUTDOWN_LIMIT + 20)
            shutdown = time.monotonic() - stopping
    finally:
        for bot in bots:
            bot.stop()
        world.set_latency(0.0)
    with FloorProcess().start(cpus=bot_cpus) as floor:
        send_concurrently(floor.url, world, command_jobs[: config.senders], config.senders)  # warm-up
        floor_sent = send_concurrently(floor.url, world, command_jobs[config.warmup_commands :], config.senders)

    failed = [s for s in sent if s.status != 200 or s.body.strip()]
    acks = [s.ack_seconds for s in sent if s.status == 200]
    report.add(
        Figure(
            "replica_ack",
            f"5. ack: {commands} commands over two replicas -> HTTP 200",
            "ms",
            samples=acks,
            target="p99 <= 50 ms",
            met=bool(acks) and percentile(acks, 99) <= ACK_P99_LIMIT and not failed,
            note=f"{config.senders} senders, half sending to each replica; both replicas on the bot's CPU"
            + (f"; {len(failed)} refused or not 200" if failed else ""),
        )
    )
    report.add(
        Figure(
            "replica_ack_floor",
            "5. harness floor: same commands -> do-nothing server",
            "ms",
            samples=[s.ack_seconds for s in floor_sent if s.status == 200],
            note="one do-nothing server on the same CPU; no target: read the ack figure against it",
        )
    )
    failover = first_poll - killed_at if first_poll is not None else float("nan")
    report.add(
        Figure(
            "failover",
            "5. failover: leader SIGKILLed -> first poll by the new leader",
            "s",
            value=failover,
            target=f"<= {config.interval + 5:g} s (interval + 5 s)",
            met=first_poll is not None and failover <= config.interval + 5,
            note="no poll by the new leader seen" if first_poll is None else "",
        )
    )
    refused = [s for s in queued if s.status != 200]
    report.add(
        Figure(
            "shutdown",
            f"5. shutdown: SIGTERM with {len(queued)} commands queued -> exit",
            "s",
            value=shutdown if code is not None else float("nan"),
            target=f"<= {SHUTDOWN_LIMIT:g} s",
            met=code == 0 and shutdown <= SHUTDOWN_LIMIT,
            note=f"Graph answering commands after {config.command_latency:g} s; exit status {code}"
            + (f"; {len(refused)} of the queued commands not acknowledged" if refused else ""),
        )
    )


def _wait_for_poll(world: WorldClient, run_ids: set[str], since: float, timeout: float) -> float | None:
    """When the first poll of the runs' jobs received after ``since`` arrived (a ``$batch`` or a job GET)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in world.graph_requests(since):
            at, method, path, _status, batched = record
            if not batched and (
                (method == "POST" and path.endswith("/$batch"))
                or (method == "GET" and path.rsplit("/", 1)[-1].lower() in run_ids)
            ):
                return at
        time.sleep(0.05)
    return None


@contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    """A new database on ``server_url``'s server for this run, dropped afterwards (the URL of the new one)."""
    name = f"mb_bench_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
