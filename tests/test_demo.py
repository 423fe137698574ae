"""The README's first command: the demo plays the whole story and prints the channel."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from bot.rehearsal.demo import run_demo


def test_demo_in_process_completed():
    out = io.StringIO()
    assert run_demo("completed", out=out) is True
    text = out.getvalue()
    assert "/migrate 5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611" in text
    assert "Approval needed" in text or "Approved by" in text
    assert "(also sent to the channel)" in text  # the final notice is broadcast
    assert "completed" in text and "Demo passed" in text


def test_demo_command_line_failed_outcome(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "AZURE_", "GRAPH_"))}
    env["SLACK_BOT_TOKEN"] = "xoxb-ignored-by-the-demo"  # the demo never uses the operator's settings
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--outcome", "failed"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Demo passed: the job ended failed" in result.stdout
    assert "EXCH-07" in result.stdout  # the failed users with their error codes
    assert "xoxb-ignored-by-the-demo" not in result.stdout + result.stderr


def test_run_without_credentials_falls_back_to_the_demo(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "AZURE_", "GRAPH_"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "running the built-in demo" in result.stdout and "Demo passed" in result.stdout
