"""The benchmark's child processes: the world (simulator + stand-in) and the bot, each alone in its process.

The bot is started exactly as an operator starts it, ``python -m bot run --http``, configured only through
the environment (``GRAPH_STATIC_TOKEN`` gives it the simulator's bearer token), so :mod:`psutil` measures
the bot's own CPU time and memory and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from bot.config import setting_names

REPO_ROOT = Path(__file__).resolve().parent.parent
_SERVING = re.compile(r"serving Slack on (http://\S+)/slack/events")


def cpu_plan(pin: bool = True) -> tuple[set[int], set[int]] | None:
    """(bot CPUs, harness CPUs): the bot alone on the first usable CPU, everything else on the others.

    None when pinning is off, impossible (one CPU) or unsupported (not Linux).
    """
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


def pin_process(pid: int, cpus: set[int] | None) -> None:
    """Move every thread of ``pid`` to ``cpus`` (threads it starts later inherit the setting)."""
    if not cpus:
        return
    tasks = Path(f"/proc/{pid}/task")
    for tid in os.listdir(tasks) if tasks.exists() else [str(pid)]:
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, PermissionError):
            pass


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in setting_names()
    }  # the operator's settings stay out
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class WorldProcess:
    """``python -m bench.world`` in a child process; ``urls`` once started."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.urls: dict[str, str] = {}

    def start(self, timeout: float = 30.0, cpus: set[int] | None = None) -> WorldProcess:
        self._log: IO[str] = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.world"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=self.log_path.parent,
            env=_child_env(),
        )
        pin_process(self.proc.pid, cpus)
        assert self.proc.stdout is not None
        line = _readline(self.proc.stdout, timeout)
        if not line:
            self.stop()
            raise RuntimeError(f"the world process did not start; see {self.log_path}")
        self.urls = json.loads(line)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()  # the world stops when its stdin closes
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._log.close()


class FloorProcess:
    """``python -m bench.floor``: the bot's HTTP server with a do-nothing app (see bench/floor.py)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0, cpus: set[int] | None = None) -> FloorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.floor"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_child_env(),
        )
        pin_process(self.proc.pid, cpus)
        assert self.proc.stdout is not None
        self.url = _readline(self.proc.stdout, timeout)
        if not self.url:
            self.stop()
            raise RuntimeError("the floor server did not start")
        pin_process(self.proc.pid, cpus)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> FloorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BotProcess:
    """``python -m bot run --http`` with ``env``; samples its resident memory until stopped.

    ``cpu_seconds()``: user + system CPU time so far (all its threads); ``peak_rss``: the kernel's high-water
    mark (``VmHWM``) where there is one, else the highest sample.
    """

    #: How the bot is started (``--port 0``: the bot logs the port it got).
    COMMAND = ("-m", "bot", "run", "--http", "--host", "127.0.0.1", "--port", "0")

    def __init__(self, env: dict[str, str], data_dir: Path, log_path: Path) -> None:
        self.env = env
        self.command = [sys.executable, *self.COMMAND]
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.url = ""
        self._peak_sampled = 0
        self._peak_hwm = 0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self, timeout: float = 60.0, cpus: set[int] | None = None) -> BotProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        # cwd is the data folder, so no .env of the work tree is read.
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            env=_child_env(self.env),
        )
        pin_process(self.proc.pid, cpus)  # before the interpreter starts any thread: they all inherit it
        self.ps = psutil.Process(self.proc.pid)
        self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._sampler.start()
        deadline = time.monotonic() + timeout
        while not self.url:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the bot exited with {self.proc.returncode}; see {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the bot did not start serving in {timeout:.0f} s; see {self.log_path}")
            match = _SERVING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
            else:
                time.sleep(0.05)
        pin_process(self.proc.pid, cpus)  # again, in case a thread started before the first call took effect
        httpx.get(f"{self.url}/healthz", timeout=10).raise_for_status()
        return self

    def wait_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first match of ``pattern`` in the bot's log, once it is there; fails if the bot exits first."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log())
            if match:
                return match
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{pattern!r} not in the log of a bot that exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pattern!r} not in the bot's log within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.02)

    def log(self) -> str:
        """Everything the bot logged so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        assert self.ps is not None
        times = self.ps.cpu_times()
        return times.user + times.system

    @property
    def peak_rss(self) -> int:
        self._read_memory()
        return max(self._peak_hwm, self._peak_sampled)

    def _read_memory(self) -> None:
        if self.ps is None:
            return
        try:
            self._peak_sampled = max(self._peak_sampled, self.ps.memory_info().rss)
            status = Path(f"/proc/{self.ps.pid}/status")
            if status.exists():
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self._peak_hwm = max(self._peak_hwm, int(line.split()[1]) * 1024)
        except (psutil.Error, OSError, ValueError):
            pass

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self._read_memory()

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone (no goodbye: its sessions end with it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM, as an orchestrator stops a replica; its exit status, or None if it is still running."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc is None:
            return
        self._read_memory()
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._sampler is not None:
            self._sampler.join(timeout=2)
        self.proc = None
        self._log.close()


def _readline(stream: IO[str], timeout: float) -> str:
    """One line from ``stream``, or "" after ``timeout`` seconds."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].strip() if result else ""


def bot_env(
    urls: dict[str, Any],
    *,
    data_dir: Path,
    interval: float,
    signing_secret: str,
    sim_token: str,
    migrators: str,
    database_url: str | None = None,
) -> dict[str, str]:
    """The bot's settings, as environment variables (the names in bot/config.py); SQLite in ``data_dir`` unless
    ``database_url`` is given."""
    return {
        "SLACK_BOT_TOKEN": urls["bot_token"],
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": urls["slack_api_url"],
        "GRAPH_BASE_URL": urls["graph_base_url"],
        "GRAPH_STATIC_TOKEN": sim_token,
        "MIGRATE_BOT_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url or f"sqlite:///{data_dir / 'bench.db'}",
        "POLL_INTERVAL_SECONDS": repr(interval),
        "MIGRATORS_USERGROUP": migrators,
    }
