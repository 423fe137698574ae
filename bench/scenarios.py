"""The benchmark's configuration, scenario 1 (ack under a slow Graph) and what every scenario shares: the bot
process, concurrent senders, waiting for Slack calls. Scenarios 2-4 are in ``bench.sweep_scenario``."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.processes import BotProcess, FloorProcess, bot_env
from bench.report import Figure, Report, percentile
from bench.sender import CommandSender, Sent
from bench.world import (
    CHANNEL,
    MIGRATORS,
    SIGNING_SECRET,
    SIM_TOKEN,
    USERS,
    WorldClient,
)

JOBS_PATH = "/solutions/migrations/crossTenantMigrationJobs/"
TRIGGER_TTL = 3.0  # Slack's, and the stand-in's
#: Slack Web API methods that write to a channel: none may be called on a tick without a change.
SLACK_WRITES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete")


@dataclass
class Config:
    commands: int = 200
    senders: int = 20
    command_latency: float = 2.5  # Graph's answer time for the commands' reads (scenarios 1 and 4)
    graph_latency: float = 0.2  # Graph's answer time for every other request, and for each $batch
    warmup_commands: int = 3
    wait_for_modals: bool = True
    runs: int = 1000
    interval: float = 5.0
    ticks: int = 10
    changes: int = 20
    #: Scenario 5 (replicas): a PostgreSQL server URL; a database of the run's own is made on it.
    database_url: str | None = None

    @classmethod
    def quick(cls) -> Config:
        return cls(
            commands=20,
            senders=5,
            command_latency=0.5,
            graph_latency=0.02,
            warmup_commands=1,
            runs=50,
            interval=0.5,
            ticks=6,
            changes=5,
        )


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bot_process(
    world: WorldClient, workdir: Path, name: str, interval: float, database_url: str | None = None
) -> BotProcess:
    data_dir = workdir / name
    env = bot_env(
        world.urls,
        data_dir=data_dir,
        interval=interval,
        signing_secret=SIGNING_SECRET,
        sim_token=SIM_TOKEN,
        migrators=MIGRATORS,
        database_url=database_url,
    )
    return BotProcess(env, data_dir, workdir / f"{name}.log")


# 1. Ack under a slow Graph
def ack_under_slow_graph(
    world: WorldClient, workdir: Path, config: Config, report: Report, bot_cpus: set[int] | None = None
) -> None:
    total = config.warmup_commands + config.commands
    say(
        f"scenario 1: {config.commands} /migrate commands from {config.senders} senders, "
        f"Graph answering after {config.command_latency:g} s"
    )
    jobs = [job["id"] for job in world.create_jobs(total, "validatePassed", "ack")]
    world.set_latency(config.command_latency)
    bot = bot_process(world, workdir, "bot-ack", interval=60.0).start(cpus=bot_cpus)
    try:
        # Warm-up, one at a time: the first command pays for lazy imports, the first database connection
        # and the user group lookup (cached for 5 minutes). Reported apart, not in the figures.
        with CommandSender(bot.url, SIGNING_SECRET, world.urls, channel_id=CHANNEL) as warm:
            warmups = [warm.slash_command(job, user_id=USERS[0]) for job in jobs[: config.warmup_commands]]
        time.sleep(0.5)
        since = time.time()
        sent = send_concurrently(bot.url, world, jobs[config.warmup_commands :], config.senders)
        triggers = {s.trigger_id: s for s in sent}
        opens = wait_calls(
            world,
            since,
            "views.open",
            lambda c: c["args"].get("trigger_id") in triggers,
            len(sent),
            timeout=TRIGGER_TTL + 10,
        )
        updates: list[dict] = []
        if config.wait_for_modals:
            opened = {c["view_id"] for c in opens if c["ok"]}
            wait = config.command_latency * (len(sent) / 8 + 2) + 10
            updates = wait_calls(
                world, since, "views.update", lambda c: c["args"].get("view_id") in opened, len(opened), timeout=wait
            )
        rss = bot.peak_rss
    finally:
        bot.stop()
        world.set_latency(0.0)
    # The same commands, senders and CPU against a server that does nothing: what the harness alone costs.
    with FloorProcess().start(cpus=bot_cpus) as floor:
        send_concurrently(floor.url, world, jobs[: config.senders], config.senders)  # warm-up
        floor_sent = send_concurrently(floor.url, world, jobs[config.warmup_commands :], config.senders)

    failed = [s for s in sent if s.status != 200 or s.body.strip()]  # a refusal comes back in the ack
    acks = [s.ack_seconds for s in sent if s.status == 200]
    open_by_trigger: dict[str, dict] = {}
    for call in opens:
        open_by_trigger.setdefault(call["args"]["trigger_id"], call)
    open_delays = [
        open_by_trigger[t]["time"] - s.sent_at
        for t, s in triggers.items()
        if t in open_by_trigger and open_by_trigger[t]["ok"]
    ]
    expired = sum(1 for c in opens if c["error"] == "expired_trigger_id")
    other_errors = sorted({c["error"] for c in opens if not c["ok"] and c["error"] != "expired_trigger_id"})
    within = sum(1 for d in open_delays if d <= TRIGGER_TTL)
    n = len(sent)

    report.add(
        Figure(
            "ack",
            "1. ack: command sent -> HTTP 200",
            "ms",
            samples=acks,
            target="p99 <= 50 ms",
            met=bool(acks) and percentile(acks, 99) <= 0.050 and not failed,
            note="; ".join(
                filter(
                    None,
                    [
                        f"{len(failed)} command(s) refused or not 200" if failed else "",
                        f"warm-up, not counted: {', '.join(f'{w.ack_seconds * 1000:.0f} ms' for w in warmups)}"
                        if warmups
                        else "",
                    ],
                )
            ),
        )
    )
    floor_acks = [s.ack_seconds for s in floor_sent if s.status == 200]
    report.add(
        Figure(
            "ack_floor",
            "1. harness floor: same commands -> do-nothing server",
            "ms",
            samples=floor_acks,
            note="cheroot with the bot's thread count and an empty WSGI app, same CPU; "
            "no target: read the ack figure against it",
        )
    )
    report.add(
        Figure(
            "views_open",
            "1. views.open: command sent -> call at Slack",
            "ms",
            samples=open_delays,
            target="p99 <= 300 ms",
            met=bool(open_delays) and percentile(open_delays, 99) <= 0.300 and len(open_delays) == n,
            note=f"{len(open_delays)} of {n} opened" + (f"; other errors: {other_errors}" if other_errors else ""),
        )
    )
    report.add(
        Figure(
            "views_open_within_ttl",
            "1. views.open within 3 s of its command",
            "%",
            value=100.0 * within / n if n else float("nan"),
            target="100 %",
            met=n > 0 and within == n,
        )
    )
    report.add(
        Figure(
            "expired_trigger",
            "1. expired_trigger_id errors",
            "count",
            value=float(expired),
            target="0",
            met=expired == 0,
        )
    )
    if config.wait_for_modals:
        view_sent = {open_by_trigger[t]["view_id"]: s.sent_at for t, s in triggers.items() if t in open_by_trigger}
        first_update: dict[str, float] = {}
        for call in updates:
            if call["ok"]:
                first_update.setdefault(call["args"]["view_id"], call["time"])
        fills = [first_update[v] - view_sent[v] for v in first_update if v in view_sent]
        report.add(
            Figure(
                "modal_filled",
                "1. views.update: command sent -> modal shows the job",
                "s",
                samples=fills,
                note=f"includes the {config.command_latency:g} s Graph latency; {len(fills)} of {n} filled (no target)",
            )
        )
    report.add(Figure("ack_bot_rss", "1. peak RSS of the bot process (scenario 1)", "MB", value=float(rss)))


def send_concurrently(bot_url: str | list[str], world: WorldClient, jobs: list[str], senders: int) -> list[Sent]:
    """``senders`` threads, each sending its next command as soon as the previous one was acknowledged.

    With several URLs, sender ``i`` sends to ``bot_url[i % len(bot_url)]`` (replicas behind a load balancer)."""
    urls = [bot_url] if isinstance(bot_url, str) else bot_url
    work: queue.Queue[str] = queue.Queue()
    for job in jobs:
        work.put(job)
    results: list[Sent] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(senders)

    def sender(index: int) -> None:
        user = USERS[index % len(USERS)]
        with CommandSender(urls[index % len(urls)], SIGNING_SECRET, world.urls, channel_id=CHANNEL) as client:
            start.wait()
            while True:
                try:
                    job_id = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    sent = client.slash_command(job_id, user_id=user)
                except Exception as error:
                    errors.append(error)
                    continue
                with lock:
                    results.append(sent)

    threads = [threading.Thread(target=sender, args=(i,), name=f"sender-{i}") for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} command(s) could not be sent: {errors[0]!r}")
    return results


def wait_calls(
    world: WorldClient, since: float, method: str, match: Callable[[dict], bool], count: int, timeout: float
) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        calls = [c for c in world.calls(since) if c["method"] == method and match(c)]
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.1)
