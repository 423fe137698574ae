"""The three scenarios. Each starts its own bot process against the shared world and adds figures to the report."""

from __future__ import annotations

import os
import queue
import random
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

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
from bot.graph.models import MigrationJob
from bot.store import Run, RunState, Store, utcnow

JOBS_PATH = "/solutions/migrations/crossTenantMigrationJobs/"
TRIGGER_TTL = 3.0  # Slack's, and the stand-in's
#: Slack Web API methods that write to a channel: none may be called on a tick without a change.
SLACK_WRITES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete")


@dataclass
class Config:
    commands: int = 200
    senders: int = 20
    graph_latency: float = 2.5
    warmup_commands: int = 3
    wait_for_modals: bool = True
    runs: int = 1000
    interval: float = 5.0
    ticks: int = 10
    changes: int = 20

    @classmethod
    def quick(cls) -> Config:
        return cls(
            commands=20, senders=5, graph_latency=0.5, warmup_commands=1, runs=50, interval=0.3, ticks=10, changes=5
        )


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _bot(world: WorldClient, workdir: Path, name: str, interval: float) -> BotProcess:
    data_dir = workdir / name
    env = bot_env(
        world.urls,
        data_dir=data_dir,
        interval=interval,
        signing_secret=SIGNING_SECRET,
        sim_token=SIM_TOKEN,
        migrators=MIGRATORS,
    )
    return BotProcess(env, data_dir, workdir / f"{name}.log")


# 1. Ack under a slow Graph
def ack_under_slow_graph(
    world: WorldClient, workdir: Path, config: Config, report: Report, bot_cpus: set[int] | None = None
) -> None:
    total = config.warmup_commands + config.commands
    say(
        f"scenario 1: {config.commands} /migrate commands from {config.senders} senders, "
        f"Graph answering after {config.graph_latency:g} s"
    )
    jobs = [job["id"] for job in world.create_jobs(total, "validatePassed", "ack")]
    world.set_latency(config.graph_latency)
    bot = _bot(world, workdir, "bot-ack", interval=60.0).start(cpus=bot_cpus)
    try:
        # Warm-up, one at a time: the first command pays for lazy imports, the first database connection
        # and the user group lookup (cached for 5 minutes). Reported apart, not in the figures.
        with CommandSender(bot.url, SIGNING_SECRET, world.urls, channel_id=CHANNEL) as warm:
            warmups = [warm.slash_command(job, user_id=USERS[0]) for job in jobs[: config.warmup_commands]]
        time.sleep(0.5)
        since = time.time()
        sent = _send_concurrently(bot.url, world, jobs[config.warmup_commands :], config.senders)
        triggers = {s.trigger_id: s for s in sent}
        opens = _wait_calls(
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
            wait = config.graph_latency * (len(sent) / 8 + 2) + 10
            updates = _wait_calls(
                world, since, "views.update", lambda c: c["args"].get("view_id") in opened, len(opened), timeout=wait
            )
        rss = bot.peak_rss
    finally:
        bot.stop()
        world.set_latency(0.0)
    # The same commands, senders and CPU against a server that does nothing: what the harness alone costs.
    with FloorProcess().start(cpus=bot_cpus) as floor:
        _send_concurrently(floor.url, world, jobs[: config.senders], config.senders)  # warm-up
        floor_sent = _send_concurrently(floor.url, world, jobs[config.warmup_commands :], config.senders)

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
                note=f"includes the {config.graph_latency:g} s Graph latency; {len(fills)} of {n} filled (no target)",
            )
        )
    report.add(Figure("ack_bot_rss", "1. peak RSS of the bot process (scenario 1)", "MB", value=float(rss)))


def _send_concurrently(bot_url: str, world: WorldClient, jobs: list[str], senders: int) -> list[Sent]:
    """``senders`` threads, each sending its next command as soon as the previous one was acknowledged."""
    work: queue.Queue[str] = queue.Queue()
    for job in jobs:
        work.put(job)
    results: list[Sent] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(senders)

    def sender(index: int) -> None:
        user = USERS[index % len(USERS)]
        with CommandSender(bot_url, SIGNING_SECRET, world.urls, channel_id=CHANNEL) as client:
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


def _wait_calls(
    world: WorldClient, since: float, method: str, match: Callable[[dict], bool], count: int, timeout: float
) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        calls = [c for c in world.calls(since) if c["method"] == method and match(c)]
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.1)


# 2 and 3. The poller at scale, and a change reaching the channel
def poller_at_scale(
    world: WorldClient, workdir: Path, config: Config, report: Report, bot_cpus: set[int] | None = None
) -> None:
    runs, interval = config.runs, config.interval
    say(f"scenario 2: {runs} RUNNING runs polled every {interval:g} s for {config.ticks} ticks, Graph at full speed")
    world.set_latency(0.0)
    jobs = [MigrationJob.model_validate(job) for job in world.create_jobs(runs, "inProgress", "scale")]
    roots = world.post_roots(runs)
    bot = _bot(world, workdir, "bot-poller", interval=interval)
    _insert_runs(Path(bot.env["DATABASE_URL"].removeprefix("sqlite:///")), jobs, roots)
    by_job = {job.id.lower(): n for n, job in enumerate(jobs)}
    bot.start(cpus=bot_cpus)
    try:
        # Every run's first tick comes within one interval (plus jitter) of the start: measure after that.
        time.sleep(interval * 1.5)
        t0, cpu0 = time.time(), bot.cpu_seconds()
        time.sleep(interval * (config.ticks + 1))
        t1, cpu1 = time.time(), bot.cpu_seconds()
        rss = bot.peak_rss
        say("scenario 3: status changes in the simulator while the poller runs")
        changes = _changes(world, jobs, roots, config)
        rss = max(rss, bot.peak_rss)
    finally:
        bot.stop()

    graph = [r for r in world.graph_requests(t0) if r[0] < t1]
    slack = [c for c in world.calls(t0) if c["time"] < t1]
    per_job: dict[str, list[float]] = defaultdict(list)
    stray = polls = 0
    for when, method, path, _status in graph:
        tail = path.split(JOBS_PATH, 1)[1] if JOBS_PATH in path else ""
        job_id = tail.split("/")[0].lower()
        if job_id in by_job:
            per_job[job_id].append(when)
        if method == "GET" and job_id in by_job and "/" not in tail.strip("/"):
            polls += 1
        else:
            stray += 1  # anything but a job GET (task lists, actions, other paths)
    ticks_per_run, max_per_tick, total_ticks = [], 0, 0
    for n in range(runs):
        times = sorted(per_job.get(jobs[n].id.lower(), []))
        ticks = _ticks(times, interval)
        ticks_per_run.append(len(ticks))
        total_ticks += len(ticks)
        max_per_tick = max([max_per_tick, *ticks])
    writes = [c for c in slack if c["method"] in SLACK_WRITES]

    bare = _bare_loop(world, jobs, bot_cpus)
    bot_cpu = (cpu1 - cpu0) / polls * 1000 if polls else float("nan")
    bot_wall = (t1 - t0) / polls * 1000 if polls else float("nan")
    report.add(
        Figure(
            "poll_cpu",
            "2. bot CPU per 1,000 polls",
            "s",
            value=bot_cpu,
            note=f"{polls} polls in {t1 - t0:.1f} s, {cpu1 - cpu0:.2f} CPU s (user+sys, all threads)",
        )
    )
    report.add(
        Figure(
            "poll_wall",
            "2. bot wall time per 1,000 polls",
            "s",
            value=bot_wall,
            note=f"1,000 polls are due every {interval * 1000 / runs:g} s at this interval",
        )
    )
    report.add(
        Figure(
            "bare_cpu",
            "2. bare httpx loop CPU per 1,000 GETs",
            "s",
            value=bare["cpu"],
            note=f"median of {bare['rounds']} rounds of {bare['gets']} GETs"
            + (" on the bot's CPU" if bot_cpus else ""),
        )
    )
    report.add(Figure("bare_wall", "2. bare httpx loop wall time per 1,000 GETs", "s", value=bare["wall"]))
    ratio = bot_cpu / bare["cpu"] if bare["cpu"] else float("nan")
    report.add(Figure("cpu_ratio", "2. CPU ratio bot / bare", "x", value=ratio, target="<= 1.5", met=ratio <= 1.5))
    report.add(
        Figure(
            "peak_rss", "2. peak RSS of the bot process", "MB", value=float(rss), target="<= 150 MB", met=rss <= 150e6
        )
    )
    requests = sum(len(times) for times in per_job.values())
    per_tick = requests / total_ticks if total_ticks else float("nan")
    report.add(
        Figure(
            "graph_per_tick",
            "2. Graph requests per run per tick",
            "count",
            value=round(per_tick, 3),
            target="1",
            met=per_tick == 1 and max_per_tick == 1 and stray == 0,
            note=f"max in one tick {max_per_tick}, other requests {stray}",
        )
    )
    report.add(
        Figure(
            "polls_per_run",
            "2. polls per run in the window (min)",
            "count",
            value=float(min(ticks_per_run)) if ticks_per_run else float("nan"),
            target=f">= {config.ticks}",
            met=bool(ticks_per_run) and min(ticks_per_run) >= config.ticks,
        )
    )
    report.add(
        Figure(
            "posts_no_change",
            "2. Slack posts on ticks with no change",
            "count",
            value=float(len(writes)),
            target="0",
            met=not writes,
            note=f"{len(slack)} Slack call(s) of any kind in the window",
        )
    )
    limit = interval + 1.0
    report.add(
        Figure(
            "change_to_channel",
            "3. status change -> thread reply at Slack",
            "s",
            samples=changes["delays"],
            target=f"<= {limit:g} s (interval + 1 s)",
            met=bool(changes["delays"])
            and max(changes["delays"]) <= limit
            and len(changes["delays"]) == changes["made"],
            note=f"{len(changes['delays'])} of {changes['made']} changes replied",
        )
    )
    report.meta.update(interval=interval, runs=runs, scale_window_seconds=round(t1 - t0, 2))


def _insert_runs(db_path: Path, jobs: list[MigrationJob], roots: list[str]) -> None:
    """The runs a busy migration programme would have: RUNNING, root message posted, last poll seen."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    store = Store.from_url(f"sqlite:///{db_path}")
    now = utcnow()
    with store.session() as session:
        session.add_all(
            Run(
                job_id=job.id.lower(),
                job_name=job.name,
                action="migrate",
                state=RunState.RUNNING.value,
                channel_id=CHANNEL,
                root_ts=root,
                requester_id=USERS[n % len(USERS)],
                reason="bench",
                created_at=now,
                started_at=now,
                last_status=job.status_label,
                last_message=job.message or "",
                last_job_update=job.last_updated,
                last_seen_change_at=now,
                posted_status=job.status_label,
                posted_message=job.message or "",
            )
            for n, (job, root) in enumerate(zip(jobs, roots))
        )
    store.engine.dispose()


def _ticks(times: list[float], interval: float) -> list[int]:
    """Requests per tick: requests less than half an interval apart belong to the same tick."""
    ticks: list[int] = []
    last = None
    for when in times:
        if last is None or when - last > interval / 2:
            ticks.append(1)
        else:
            ticks[-1] += 1
        last = when
    return ticks


def _changes(world: WorldClient, jobs: list[MigrationJob], roots: list[str], config: Config) -> dict[str, Any]:
    """Change ``config.changes`` jobs at random moments over two intervals; time each thread reply."""
    picks = random.sample(range(len(jobs)), min(config.changes, len(jobs)))
    offsets = sorted(random.uniform(0, 2 * config.interval) for _ in picks)
    since = time.time()
    start = time.monotonic()
    made: dict[str, float] = {}  # root ts -> when the change was made
    for n, offset in zip(picks, offsets):
        time.sleep(max(0.0, start + offset - time.monotonic()))
        before = time.time()
        world.set_status(jobs[n].id, "cuttingOver")
        made[roots[n]] = before
    replies = _wait_calls(
        world,
        since,
        "chat.postMessage",
        lambda c: c["args"].get("thread_ts") in made and c["ok"],
        len(made),
        timeout=3 * config.interval + 10,
    )
    first: dict[str, float] = {}
    for call in replies:
        first.setdefault(call["args"]["thread_ts"], call["time"])
    return {"made": len(made), "delays": [first[ts] - made[ts] for ts in made if ts in first]}


def _bare_loop(world: WorldClient, jobs: list[MigrationJob], cpus: set[int] | None) -> dict[str, float]:
    """The same GETs with nothing around them: one keep-alive httpx client, the same bearer token, run on the
    bot's CPU (the bot is stopped by then) so that both talk to the simulator across the same CPU boundary."""
    previous = os.sched_getaffinity(0) if cpus else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        return _bare_gets(world, jobs)
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)


def _bare_gets(world: WorldClient, jobs: list[MigrationJob], rounds: int = 3, at_least: int = 1000) -> dict[str, float]:
    """``rounds`` rounds of GETs of every job (cycled to ``at_least`` GETs); the median round, per 1,000 GETs."""
    base = world.urls["graph_base_url"] + JOBS_PATH
    headers = {"Authorization": f"Bearer {SIM_TOKEN}", "Accept": "application/json"}
    urls = [base + job.id for job in jobs]
    urls = (urls * (at_least // len(urls) + 1))[: max(at_least, len(urls))]
    cpus, walls = [], []
    with httpx.Client(headers=headers, timeout=20) as client:
        for url in urls[:20]:  # warm-up: connection, first-use costs
            client.get(url).raise_for_status()
        for _ in range(rounds):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for url in urls:
                response = client.get(url)
                response.raise_for_status()
                response.json()
            cpus.append((time.process_time() - cpu0) / len(urls) * 1000)
            walls.append((time.perf_counter() - wall0) / len(urls) * 1000)
    return {
        "cpu": sorted(cpus)[len(cpus) // 2],
        "wall": sorted(walls)[len(walls) // 2],
        "gets": len(urls),
        "rounds": rounds,
    }
