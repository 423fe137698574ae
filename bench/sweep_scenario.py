"""Scenarios 2-4 on one bot: the poller at scale against a Graph with real latency, a change reaching its thread,
and acks while a sweep runs. Figures are described in bench/README.md."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.processes import FloorProcess
from bench.report import Figure, Report, percentile
from bench.scenarios import SLACK_WRITES, Config, bot_process, say, send_concurrently, wait_calls
from bench.sweeps import JOBS_PATH, analyse, sweep_spans
from bench.world import CHANNEL, SIM_TOKEN, USERS, WorldClient
from bot.graph.models import MigrationJob
from bot.store import Run, RunState, Store, utcnow
from bot.workflow.poller import BATCHES_IN_FLIGHT, POLL_BATCH

#: Ack while the sweep runs: at most this many times the harness floor's p99, and at most 50 ms.
ACK_FLOOR_FACTOR = 3.0
ACK_P99_LIMIT = 0.050


def poller_at_scale(
    world: WorldClient, workdir: Path, config: Config, report: Report, bot_cpus: set[int] | None = None
) -> None:
    runs, interval = config.runs, config.interval
    say(
        f"scenario 2: {runs} RUNNING runs, a sweep every {interval:g} s for {config.ticks} ticks, "
        f"Graph answering after {config.graph_latency * 1000:g} ms (each $batch too)"
    )
    world.set_latency(config.graph_latency)
    jobs = [MigrationJob.model_validate(job) for job in world.create_jobs(runs, "inProgress", "scale")]
    command_jobs = [
        job["id"] for job in world.create_jobs(config.warmup_commands + config.commands, "validatePassed", "sweep-ack")
    ]
    roots = world.post_roots(runs)
    bot = bot_process(world, workdir, "bot-poller", interval=interval)
    Path(bot.env["DATABASE_URL"].removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    insert_runs(bot.env["DATABASE_URL"], jobs, roots)
    job_ids = {job.id.lower() for job in jobs}
    bot.start(cpus=bot_cpus)
    try:
        time.sleep(interval * 1.5)  # the first sweep runs one interval after the start
        t0, cpu0 = time.time(), bot.cpu_seconds()
        time.sleep(interval * (config.ticks + 2))
        t1, cpu1 = time.time(), bot.cpu_seconds()
        rss = bot.peak_rss
        say("scenario 3: status changes in the simulator while the poller runs")
        changes = _changes(world, jobs, roots, config)
        say(
            f"scenario 4: {config.commands} /migrate commands from {config.senders} senders as a sweep starts, "
            f"Graph answering commands after {config.command_latency:g} s"
        )
        sweeping = _acks_while_sweeping(world, bot.url, command_jobs, job_ids, config)
        rss = max(rss, bot.peak_rss)
    finally:
        bot.stop()
        world.set_latency(0.0)
    with FloorProcess().start(cpus=bot_cpus) as floor:
        send_concurrently(floor.url, world, command_jobs[: config.senders], config.senders)  # warm-up
        floor_sent = send_concurrently(floor.url, world, command_jobs[config.warmup_commands :], config.senders)

    records = [r for r in world.graph_requests(t0) if r[0] < t1]
    sweeps = analyse(records, job_ids, interval, t0, t1)
    slack = [c for c in world.calls(t0) if c["time"] < t1]
    writes = [c for c in slack if c["method"] in SLACK_WRITES]
    world.set_latency(config.graph_latency)
    try:
        bare = _bare_loop(world, jobs, bot_cpus, concurrency=BATCHES_IN_FLIGHT)
    finally:
        world.set_latency(0.0)

    windows = len(sweeps.windows)
    coverage = min(sweeps.coverage) if sweeps.coverage else float("nan")
    report.add(
        Figure(
            "coverage",
            "2. coverage: share of runs read in each interval (lowest)",
            "",
            value=coverage,
            target="1.0",
            met=coverage == 1.0 and windows >= config.ticks,
            note=f"{windows} intervals; mean {sum(sweeps.coverage) / max(windows, 1):.3f}",
        )
    )
    most_http = max(sweeps.http) if sweeps.http else float("nan")
    http_limit = runs / POLL_BATCH + 5
    report.add(
        Figure(
            "http_per_tick",
            "2. Graph HTTP requests per tick (most)",
            "count",
            value=float(most_http),
            target=f"<= {http_limit:g}",
            met=most_http <= http_limit and sweeps.other == 0,
            note=f"median {sorted(sweeps.http)[len(sweeps.http) // 2] if sweeps.http else 'n/a'}; "
            f"requests other than batches and job reads: {sweeps.other}",
        )
    )
    per_tick = sweeps.reads_per_run_per_tick
    report.add(
        Figure(
            "graph_per_tick",
            "2. Graph reads per run per tick",
            "count",
            value=round(per_tick, 3),
            target="1",
            met=per_tick == 1 and sweeps.most_reads_one_run == 1,
            note=f"most reads of one run in one tick {sweeps.most_reads_one_run}",
        )
    )
    report.add(
        Figure(
            "sweep_time",
            "2. sweep: first read -> last read",
            "s",
            samples=sweeps.sweep_seconds,
            note=f"must stay under the interval ({interval:g} s); "
            f"{BATCHES_IN_FLIGHT} batches of {POLL_BATCH} in flight",
        )
    )
    bot_cpu = (cpu1 - cpu0) / sweeps.reads if sweeps.reads else float("nan")
    report.add(
        Figure(
            "poll_cpu",
            "2. bot CPU per job read",
            "us",
            value=bot_cpu,
            note=f"{sweeps.reads} reads in {t1 - t0:.1f} s, {cpu1 - cpu0:.2f} CPU s (user+sys, all threads)",
        )
    )
    report.add(
        Figure(
            "bare_cpu",
            f"2. bare httpx loop CPU per GET ({BATCHES_IN_FLIGHT} threads)",
            "us",
            value=bare["cpu"],
            note=f"median of {bare['rounds']} rounds of {bare['gets']} GETs at the same Graph latency"
            + (", on the bot's CPU" if bot_cpus else ""),
        )
    )
    ratio = bot_cpu / bare["cpu"] if bare["cpu"] else float("nan")
    report.add(Figure("cpu_ratio", "2. CPU ratio bot / bare", "x", value=ratio, target="<= 1.0", met=ratio <= 1.0))
    report.add(
        Figure(
            "peak_rss",
            "2-4. peak RSS of the bot process",
            "MB",
            value=float(rss),
            target="<= 150 MB",
            met=rss <= 150e6,
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
    acks = [s.ack_seconds for s in sweeping["sent"] if s.status == 200]
    floor_acks = [s.ack_seconds for s in floor_sent if s.status == 200]
    floor_p99 = percentile(floor_acks, 99) if floor_acks else float("nan")
    ack_limit = min(ACK_P99_LIMIT, ACK_FLOOR_FACTOR * floor_p99)
    failed = [s for s in sweeping["sent"] if s.status != 200 or s.body.strip()]
    report.add(
        Figure(
            "ack_sweep",
            "4. ack while a sweep runs: command sent -> HTTP 200",
            "ms",
            samples=acks,
            target=f"p99 <= 50 ms and <= {ACK_FLOOR_FACTOR:g}x floor",
            met=bool(acks) and percentile(acks, 99) <= ack_limit and not failed,
            note=f"{sweeping['inside']} of {len(acks)} sent while a sweep was reading"
            + (f"; {len(failed)} refused or not 200" if failed else "")
            + (f"; p99 / floor p99 = {percentile(acks, 99) / floor_p99:.2f}x" if acks and floor_acks else ""),
        )
    )
    report.add(
        Figure(
            "ack_sweep_floor",
            "4. harness floor: same commands -> do-nothing server",
            "ms",
            samples=floor_acks,
            note="same senders, same CPU, measured in this run",
        )
    )
    report.meta.update(interval=interval, runs=runs, scale_window_seconds=round(t1 - t0, 2))


def _acks_while_sweeping(
    world: WorldClient, bot_url: str, jobs: list[str], job_ids: set[str], config: Config
) -> dict[str, Any]:
    """Commands' Graph reads answer after ``command_latency``, each batch after ``graph_latency``; warm up, wait
    for the next sweep's first read, then send every command from ``senders`` senders at once."""
    world.set_latency(config.command_latency, batch_seconds=config.graph_latency)
    warm = jobs[: config.warmup_commands]
    if warm:
        send_concurrently(bot_url, world, warm, 1)
    _wait_for_sweep(world, job_ids, config.interval)
    sent = send_concurrently(bot_url, world, jobs[config.warmup_commands :], config.senders)
    time.sleep(config.interval)  # let the sweep finish: its span ends at its last read
    records = world.graph_requests(min(s.sent_at for s in sent) - config.interval)
    spans = sweep_spans(records, job_ids, config.interval)
    inside = sum(1 for s in sent if any(low <= s.sent_at <= high for low, high in spans))
    return {"sent": sent, "inside": inside}


def _wait_for_sweep(world: WorldClient, job_ids: set[str], interval: float) -> None:
    """Return as soon as a sweep starts: a job read after a pause of at least a fifth of an interval."""
    deadline = time.monotonic() + 3 * interval + 5
    while time.monotonic() < deadline:
        now = time.time()
        recent = world.graph_requests(now - interval / 5)
        reads = [r for r in recent if r[1] == "GET" and JOBS_PATH in r[2] and r[2].rsplit("/", 1)[1] in job_ids]
        if not reads:  # a pause: the next read is a sweep's first
            break
        time.sleep(0.02)
    start = time.time()
    while time.monotonic() < deadline:
        records = world.graph_requests(start)
        if any(r[1] == "GET" and r[2].rsplit("/", 1)[1] in job_ids for r in records):
            return
        time.sleep(0.01)
    raise RuntimeError("no sweep started within three intervals")


def insert_runs(database_url: str, jobs: list[MigrationJob], roots: list[str]) -> None:
    """The runs a busy migration programme would have: RUNNING, root message posted, last poll seen."""
    store = Store.from_url(database_url)
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
    replies = wait_calls(
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


def _bare_loop(
    world: WorldClient, jobs: list[MigrationJob], cpus: set[int] | None, *, concurrency: int
) -> dict[str, float]:
    """The same reads with nothing around them, one GET per job from ``concurrency`` threads sharing one
    keep-alive httpx client (the bot's shape), run on the bot's CPU after the bot stopped."""
    previous = os.sched_getaffinity(0) if cpus else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        return _bare_gets(world, jobs, concurrency)
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)


def _bare_gets(world: WorldClient, jobs: list[MigrationJob], concurrency: int, rounds: int = 3) -> dict[str, float]:
    """``rounds`` rounds of ``30 x concurrency`` GETs (the jobs in turn); the median round's CPU per GET."""
    base = world.urls["graph_base_url"] + JOBS_PATH
    headers = {"Authorization": f"Bearer {SIM_TOKEN}", "Accept": "application/json"}
    count = min(len(jobs), 30 * concurrency)
    cpus: list[float] = []
    with httpx.Client(headers=headers, timeout=20) as client:
        for job in jobs[:concurrency]:  # warm-up: connection, first-use costs
            client.get(base + job.id).raise_for_status()
        for round_ in range(rounds):
            urls = [base + jobs[(round_ * count + n) % len(jobs)].id for n in range(count)]
            shares = [urls[k::concurrency] for k in range(concurrency)]

            def read(share: list[str]) -> None:
                for url in share:
                    response = client.get(url)
                    response.raise_for_status()
                    response.json()

            threads = [threading.Thread(target=read, args=(share,)) for share in shares]
            cpu0 = time.process_time()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            cpus.append((time.process_time() - cpu0) / count)
    return {"cpu": sorted(cpus)[len(cpus) // 2], "gets": count, "rounds": rounds}
