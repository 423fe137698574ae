"""The benchmark's world process: the Graph simulator and the Slack stand-in, plus a small control API.

Run as ``python -m bench.world``: it prints one JSON line (the URLs) on stdout, then serves until stdin
closes or it gets SIGTERM. It runs in its own process so that the driver (which sends commands and times
them) and the bot (whose CPU and memory are measured) don't share an interpreter, or a GIL, with it.

The control API (``/_bench/`` on its own port) exposes what the driver needs from the stand-in and the
simulator objects beyond the simulator's own HTTP control API (``/_sim/``), in compact form:

* ``POST /_bench/slash`` ``{user_id, channel_id}`` -> ``{trigger_id, response_url}``, as Slack issues them for
  a slash command (the trigger's 3 s TTL starts now)
* ``POST /_bench/jobs`` ``{count, status, prefix}`` -> ``{"value": [<job as Graph returns it>, ...]}``
* ``POST /_bench/roots`` ``{count, channel}`` -> ``{"value": [ts, ...]}`` (root messages posted by the bot user
  through the stand-in's Web API, so the bot can reply in their threads and edit them)
* ``GET /_bench/calls?since=T`` -> Slack Web API calls answered since ``T`` (epoch seconds), compact
* ``GET /_bench/graph?since=T`` -> Graph requests received since ``T``: ``[time, method, path, status, batched]``
  (``batched``: the request came inside a ``POST /$batch``, so it was not an HTTP request of its own)
* ``POST /_bench/reset`` forgets recorded Slack calls and Graph requests
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import httpx

from bot.httpserver import WSGIServer
from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.slack_standin import SlackStandIn
from bot.slack.scopes import BOT_SCOPES

SIM_TOKEN = "bench-graph-token"
SIGNING_SECRET = "bench-signing-secret-0123456789ab"
CHANNEL = "C0BENCH"
MIGRATORS = "S0MIGRATORS"
APPROVERS = "S0APPROVERS"
#: Slack user ids the benchmark's senders type commands as (all migrators).
USERS = tuple(f"U0BENCH{n:03d}" for n in range(64))
#: Arguments of a Slack call worth sending back to the driver.
_CALL_ARGS = ("trigger_id", "channel", "thread_ts", "ts", "view_id")


class World:
    """The simulator and the stand-in, populated for the benchmark, with the control API."""

    def __init__(self, *, slack_threads: int = 32) -> None:
        # A still simulated clock: a job stays in its status until the driver changes it (set_status).
        self.sim = GraphSimulator(clock=SimClock(speed=0.0), seed=False, token=SIM_TOKEN)
        self.slack = SlackStandIn(scopes=frozenset(BOT_SCOPES), threads=slack_threads)
        self.control: WSGIServer | None = None

    def start(self) -> World:
        self.sim.start(threads=64)  # modal fills wait 2.5 s each while the sweep batches go on
        self.slack.start()
        self.slack.add_channel(CHANNEL, "migrations-bench", members=USERS)
        # The bench measures the bot's own cost at hundreds of jobs in one channel; Slack's rate limits (on by
        # default in the stand-in, tested in tests/test_slack_standin.py and tests/test_poller.py) would only
        # measure Slack's pacing here.
        self.slack.set_rate_limits(enabled=False)
        for n, user in enumerate(USERS):
            self.slack.add_user(user, f"migrator{n}", real_name=f"Migrator {n}")
        self.slack.add_usergroup(MIGRATORS, "migrators", list(USERS))
        self.slack.add_usergroup(APPROVERS, "migration-approvers", list(USERS[:2]))
        self.control = WSGIServer(self._app, "127.0.0.1", 0, threads=8).start()
        return self

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
        self.slack.stop()
        self.sim.stop()

    def urls(self) -> dict[str, str]:
        assert self.control is not None
        return {
            "graph_base_url": self.sim.base_url,
            "sim_url": self.sim.url,
            "slack_api_url": self.slack.api_url,
            "control_url": self.control.url,
            "bot_token": self.slack.bot_token,
            "team_id": self.slack.team_id,
            "team_domain": self.slack.team_domain,
            "app_id": self.slack.app_id,
            "pid": str(os.getpid()),
        }

    # Control API
    def _app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        try:
            status, result = 200, self._route(method, path, query, body)
        except (KeyError, ValueError, TypeError) as error:
            status, result = 400, {"error": f"{type(error).__name__}: {error}"}
        if result is None:
            status, result = 404, {"error": f"no {method} {path}"}
        payload = json.dumps(result, default=str).encode()
        start_response(
            f"{status} {'OK' if status == 200 else 'Error'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    def _route(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        match method, path:
            case "POST", "/_bench/slash":
                user, channel = body["user_id"], body.get("channel_id", CHANNEL)
                return {
                    "trigger_id": self.slack.issue_trigger(user),
                    "response_url": self.slack.issue_response_url(channel=channel, user=user),
                }
            case "POST", "/_bench/jobs":
                return {
                    "value": self._jobs(
                        int(body["count"]), body.get("status", "validatePassed"), body.get("prefix", "bench")
                    )
                }
            case "POST", "/_bench/roots":
                return {"value": self._roots(int(body["count"]), body.get("channel", CHANNEL))}
            case "GET", "/_bench/calls":
                since = float(query.get("since", 0))
                return {"value": [_compact_call(call) for call in self.slack.calls if call.time >= since]}
            case "GET", "/_bench/graph":
                since = float(query.get("since", 0))
                return {
                    "value": [
                        [r.time, r.method, r.path, r.status, r.batch_id is not None]
                        for r in self.sim.requests
                        if r.time >= since
                    ]
                }
            case "POST", "/_bench/reset":
                self.slack.reset_calls()
                self.sim.clear_requests()
                return {}
        return None

    def _jobs(self, count: int, status: str, prefix: str) -> list[dict[str, Any]]:
        jobs = []
        for n in range(count):
            job_id = self.sim.create_job(f"{prefix}-{n:04d}", status=status, users=1)
            jobs.append(self.sim.job(job_id))
        return jobs

    def _roots(self, count: int, channel: str) -> list[str]:
        """Root messages posted as the bot, through the Web API like the bot's own (no private shortcut)."""
        headers = {"Authorization": f"Bearer {self.slack.bot_token}"}
        with httpx.Client(base_url=self.slack.api_url, headers=headers, timeout=30) as client:
            stamps = []
            for n in range(count):
                response = client.post("chat.postMessage", json={"channel": channel, "text": f"bench run {n}"})
                body = response.json()
                if not body.get("ok"):
                    raise ValueError(f"chat.postMessage: {body.get('error')}")
                stamps.append(body["ts"])
        return stamps


def _compact_call(call: Any) -> dict[str, Any]:
    args = {key: call.args[key] for key in _CALL_ARGS if key in call.args}
    response = call.response or {}
    view = response.get("view") if isinstance(response.get("view"), dict) else {}
    return {
        "method": call.method,
        "time": call.time,
        "ok": call.ok,
        "error": call.error,
        "args": args,
        "ts": response.get("ts"),
        "view_id": view.get("id"),
    }


class WorldClient:
    """The driver's side of the control API (and of the simulator's ``/_sim/``)."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self._http = httpx.Client(timeout=120)
        self._sim_headers = {"Authorization": f"Bearer {SIM_TOKEN}"}

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._http.post(self.urls["control_url"] + path, json=body)
        response.raise_for_status()
        return response.json()

    def _get(self, path: str, **params: Any) -> Any:
        response = self._http.get(self.urls["control_url"] + path, params=params)
        response.raise_for_status()
        return response.json()

    def create_jobs(self, count: int, status: str, prefix: str) -> list[dict[str, Any]]:
        return self._post("/_bench/jobs", {"count": count, "status": status, "prefix": prefix})["value"]

    def post_roots(self, count: int, channel: str = CHANNEL) -> list[str]:
        return self._post("/_bench/roots", {"count": count, "channel": channel})["value"]

    def calls(self, since: float = 0.0) -> list[dict[str, Any]]:
        return self._get("/_bench/calls", since=repr(since))["value"]

    def graph_requests(self, since: float = 0.0) -> list[list[Any]]:
        return self._get("/_bench/graph", since=repr(since))["value"]

    def reset(self) -> None:
        self._post("/_bench/reset", {})

    # The simulator's own control API
    def set_latency(self, seconds: float, batch_seconds: float | None = None) -> None:
        """Graph's latency per HTTP request; ``batch_seconds``, when given, per ``$batch`` instead."""
        response = self._http.post(
            f"{self.urls['sim_url']}/_sim/latency",
            json={"seconds": seconds, "batch_seconds": batch_seconds},
            headers=self._sim_headers,
        )
        response.raise_for_status()

    def set_status(self, job_id: str, status: str) -> None:
        response = self._http.post(
            f"{self.urls['sim_url']}/_sim/jobs/{job_id}/status", json={"status": status}, headers=self._sim_headers
        )
        response.raise_for_status()


def main() -> int:
    world = World().start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps(world.urls()), flush=True)
    # The driver holds our stdin: when it goes away (even killed), stdin closes and we stop.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        world.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
