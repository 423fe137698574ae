"""The poller's sweeps, read back from the simulator's request log: coverage, HTTP requests and reads per tick.

A record is ``[time, method, path, status, batched]`` (``bench.world``'s ``/_bench/graph``). A job *read* is a
GET of ``.../crossTenantMigrationJobs/{id}``, alone or inside a ``POST /$batch``; an *HTTP request* is any
record that is not inside a batch (a batch counts once).

Ticks are windows of one interval anchored at a sweep's start (the first read after a pause of at least a fifth
of the interval), opened a tenth of an interval early so a sweep that starts a little late still falls inside
its own window. A sweep that overruns its interval shows up as a window that misses runs (coverage < 1).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

JOBS_PATH = "/solutions/migrations/crossTenantMigrationJobs/"


@dataclass
class Sweeps:
    runs: int
    interval: float
    windows: list[tuple[float, float]] = field(default_factory=list)
    coverage: list[float] = field(default_factory=list)  # per window: share of runs read in it
    http: list[int] = field(default_factory=list)  # per window: Graph HTTP requests
    sweep_seconds: list[float] = field(default_factory=list)  # per window: first read -> last read
    reads: int = 0  # job reads in the windows
    most_reads_one_run: int = 0  # the most reads of one run in one window
    other: int = 0  # HTTP requests in the windows that are neither a batch nor a job read

    @property
    def reads_per_run_per_tick(self) -> float:
        return self.reads / (self.runs * len(self.windows)) if self.windows and self.runs else float("nan")


def job_read(record: list[Any], job_ids: set[str]) -> str | None:
    """The job id when ``record`` is a GET of one of ``job_ids``, else None."""
    _, method, path, *_ = record
    if method != "GET" or JOBS_PATH not in path:
        return None
    tail = path.split(JOBS_PATH, 1)[1].strip("/")
    job_id = tail.lower()
    return job_id if "/" not in tail and job_id in job_ids else None


def analyse(records: list[list[Any]], job_ids: set[str], interval: float, start: float, end: float) -> Sweeps:
    """Cut ``[start, end)`` into windows of one interval at the sweeps' pace and measure each window."""
    result = Sweeps(runs=len(job_ids), interval=interval)
    records = sorted((r for r in records if start <= r[0] < end), key=lambda r: r[0])
    reads = [(r[0], job) for r in records if (job := job_read(r, job_ids)) is not None]
    if not reads:
        return result
    anchor = reads[0][0]
    for before, after in zip(reads, reads[1:]):
        if after[0] - before[0] >= interval / 5:
            anchor = after[0]
            break
    opens = anchor - interval / 10
    while opens + interval <= end:
        result.windows.append((opens, opens + interval))
        opens += interval
    for low, high in result.windows:
        inside = [(when, job) for when, job in reads if low <= when < high]
        counts: dict[str, int] = defaultdict(int)
        for _, job in inside:
            counts[job] += 1
        result.coverage.append(len(counts) / len(job_ids))
        result.reads += len(inside)
        result.most_reads_one_run = max([result.most_reads_one_run, *counts.values()])
        if inside:
            result.sweep_seconds.append(inside[-1][0] - inside[0][0])
        http = [r for r in records if low <= r[0] < high and not r[4]]
        result.http.append(len(http))
        result.other += sum(1 for r in http if not r[2].endswith("/$batch") and job_read(r, job_ids) is None)
    return result


def sweep_spans(records: list[list[Any]], job_ids: set[str], interval: float) -> list[tuple[float, float]]:
    """(first read, last read) of each sweep in ``records``: reads closer than a fifth of an interval apart."""
    times = sorted(r[0] for r in records if job_read(r, job_ids) is not None)
    spans: list[tuple[float, float]] = []
    for when in times:
        if spans and when - spans[-1][1] < interval / 5:
            spans[-1] = (spans[-1][0], when)
        else:
            spans.append((when, when))
    return spans
