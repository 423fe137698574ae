"""Smoke test of the benchmark: the quick variant runs end to end and produces every figure.

Timings are not asserted (CI machines vary); bench/README.md has the measured figures.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("psutil")

from bench.__main__ import main

EXPECTED = {
    "ack",
    "ack_floor",
    "views_open",
    "views_open_within_ttl",
    "expired_trigger",
    "modal_filled",
    "ack_bot_rss",
    "coverage",
    "http_per_tick",
    "graph_per_tick",
    "sweep_time",
    "poll_cpu",
    "bare_cpu",
    "cpu_ratio",
    "peak_rss",
    "posts_no_change",
    "change_to_channel",
    "ack_sweep",
    "ack_sweep_floor",
}
#: Scenario 5 needs PostgreSQL (TEST_DATABASE_URL, set in CI); without it the group says it was skipped.
REPLICA_FIGURES = {"replica_ack", "replica_ack_floor", "failover", "shutdown"}


@pytest.mark.timeout(150)
def test_quick_bench_produces_every_figure(tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert main(["--quick", "--json", str(out)]) == 0

    data = json.loads(out.read_text())
    figures = {figure["key"]: figure for figure in data["figures"]}
    if os.environ.get("TEST_DATABASE_URL"):
        assert set(figures) == EXPECTED | REPLICA_FIGURES
        for key in ("replica_ack", "replica_ack_floor"):
            assert figures[key]["n"] and figures[key]["p99"] is not None
    else:
        assert set(figures) == EXPECTED
        assert data["meta"]["replicas"].startswith("skipped: no PostgreSQL URL")
    missing = [key for key, figure in figures.items() if not figure["produced"]]
    assert not missing, f"figures not produced: {missing}"
    for key in ("ack", "ack_floor", "views_open", "modal_filled", "change_to_channel", "ack_sweep", "sweep_time"):
        assert figures[key]["n"] and figures[key]["median"] is not None and figures[key]["p99"] is not None
    assert data["meta"]["cpu_count"] >= 1

    printed = capsys.readouterr().out
    assert f"{data['meta']['cpu_count']} CPUs" in printed
    for figure in figures.values():
        assert figure["label"] in printed  # one table with every figure
