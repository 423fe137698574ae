"""bench.sweeps: coverage, HTTP requests and reads per tick from a request log (synthetic logs, no processes)."""

from __future__ import annotations

from bench.sweeps import JOBS_PATH, analyse, sweep_spans

JOBS = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(40)]
BASE = "/beta" + JOBS_PATH


def sweep(start: float, jobs: list[str], *, per_batch: int = 20, spacing: float = 0.2) -> list[list]:
    """One sweep as the simulator records it: per batch, the POST then its inner GETs."""
    records = []
    for n in range(0, len(jobs), per_batch):
        when = start + (n // per_batch) * spacing
        records.append([when, "POST", "/beta/$batch", 200, False])
        records.extend([when + 0.2, "GET", BASE + job, 200, True] for job in jobs[n : n + per_batch])
    return records


def test_every_run_read_in_every_interval():
    records = [r for k in range(6) for r in sweep(100.0 + 5 * k, JOBS)]
    result = analyse(records, set(JOBS), 5.0, 99.0, 130.0)
    assert len(result.windows) == 5 and result.coverage == [1.0] * 5
    assert result.http == [2] * 5 and result.other == 0
    assert result.reads_per_run_per_tick == 1.0 and result.most_reads_one_run == 1
    assert all(abs(s - 0.2) < 1e-9 for s in result.sweep_seconds)


def test_a_sweep_that_overruns_its_interval_lowers_coverage():
    slow = [r for k in range(4) for r in sweep(100.0 + 10 * k, JOBS, spacing=4.0)]  # 8 s sweeps, every 10 s
    result = analyse(slow, set(JOBS), 5.0, 99.0, 140.0)
    assert min(result.coverage) < 1.0


def test_single_gets_count_as_http_requests_and_stray_requests_are_counted():
    records = [[100.0 + n * 0.01, "GET", BASE + job, 200, False] for n, job in enumerate(JOBS)]
    records += [[105.5, "GET", BASE + JOBS[0] + "/users", 200, False]]
    records += [[105.0 + n * 0.01, "GET", BASE + job, 200, False] for n, job in enumerate(JOBS)]
    result = analyse(records, set(JOBS), 5.0, 99.0, 110.0)  # anchored at the second sweep (after a pause)
    assert result.http[0] == 41 and result.other == 1 and result.coverage[0] == 1.0


def test_sweep_spans():
    records = sweep(100.0, JOBS) + sweep(105.0, JOBS)
    assert sweep_spans(records, set(JOBS), 5.0) == [(100.2, 100.4), (105.2, 105.4)]
