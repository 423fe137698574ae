"""Slack's side of Socket Mode for the stand-in: a WebSocket server that says ``hello``, pushes envelopes,
collects the app's acknowledgements and refreshes connections.

Behaviour and sources (api.slack.com/apis/connections/socket-implement; ``shared/reference/slack-platform.md``
sections 1.4 and 9): every connection is greeted with ``hello`` (``num_connections`` counts the live ones);
envelopes have Slack's shape ``{"envelope_id", "type", "payload", "accepts_response_payload"}`` and go to one live
connection; the app answers each with ``{"envelope_id", "payload"?}`` on any connection. :meth:`refresh` sends
``{"type": "disconnect", "reason": "refresh_requested"}`` as Slack does every few hours; from then on that
connection gets no new envelopes (they wait until the app has opened its new connection, so none is lost) and the
app is expected to connect again and close the old one. An ack later than ``ack_timeout`` (3 s) is dropped and
recorded in :attr:`violations`, as Slack shows the user ``operation_timeout`` and ignores it.
Simplified: one app; no ``warning`` / ``too_many_websockets`` frames; envelopes are not retried.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.sync.server import Server, ServerConnection, serve

ACK_TIMEOUT = 3.0


class SocketModeServer:
    """Serve Socket Mode on loopback; point ``SlackStandIn.socket_mode_url`` at :attr:`url`."""

    def __init__(self, app_id: str = "AMIGRATE", *, ack_timeout: float = ACK_TIMEOUT) -> None:
        self.app_id = app_id
        self.ack_timeout = ack_timeout
        self.acks: dict[str, dict] = {}
        #: Late acks and other things Slack would not take; tests fail when it is not empty.
        self.violations: list[str] = []
        #: How many connections the app has opened so far.
        self.sessions = 0
        self._connections: list[ServerConnection] = []
        self._draining: set[int] = set()  # id() of connections told to disconnect
        self._pending: list[str] = []  # envelopes waiting for a live connection
        self._sent_at: dict[str, float] = {}
        self._changed = threading.Condition()
        self._server: Server | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> SocketModeServer:
        self._server = serve(self._session, host, port)
        threading.Thread(target=self._server.serve_forever, name="socket-mode", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _live(self) -> list[ServerConnection]:
        fresh = [c for c in self._connections if id(c) not in self._draining]
        return fresh or list(self._connections)  # a refreshed connection works until the app has a new one

    def _session(self, connection: ServerConnection) -> None:
        with self._changed:
            self._connections.append(connection)
            self.sessions += 1
            live = len(self._live())
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": live,
                    "connection_info": {"app_id": self.app_id},
                    "debug_info": {"host": "standin", "approximate_connection_time": 18060},
                }
            )
        )
        with self._changed:
            pending, self._pending = self._pending, []
            self._changed.notify_all()
        for raw in pending:
            connection.send(raw)
        try:
            for raw in connection:
                message = json.loads(raw)
                if "envelope_id" in message:
                    self._acked(message)
        finally:
            with self._changed:
                self._connections.remove(connection)
                self._draining.discard(id(connection))
                self._changed.notify_all()

    def _acked(self, message: dict) -> None:
        with self._changed:
            envelope_id = message["envelope_id"]
            delay = time.monotonic() - self._sent_at.get(envelope_id, time.monotonic())
            if delay > self.ack_timeout:
                self.violations.append(
                    f"late ack: {delay:.2f} s for envelope {envelope_id} (Slack waits {self.ack_timeout:g} s, shows "
                    "operation_timeout and ignores the answer)"
                )
                message = {**message, "late": True}
                message.pop("payload", None)
            self.acks[envelope_id] = message
            self._changed.notify_all()

    def wait_connected(self, timeout: float = 10.0, *, sessions: int = 1) -> None:
        """Until a live (not refreshing) connection exists and the app has opened ``sessions`` in all."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._live() and self.sessions >= sessions, timeout):
                raise TimeoutError("the app did not connect over Socket Mode")

    def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        """Until exactly ``count`` connections are open (e.g. 1 once the app closed the refreshed one)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._connections) == count, timeout):
                raise TimeoutError(f"{len(self._connections)} connections open, not {count}")

    def refresh(self) -> None:
        """Ask the app to reconnect, as Slack does regularly: ``disconnect`` / ``refresh_requested`` on every live
        connection; new envelopes wait for the app's next connection."""
        message = json.dumps({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "standin"}})
        with self._changed:
            targets = self._live()
            self._draining.update(id(c) for c in targets)
        for connection in targets:
            connection.send(message)

    def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Push one envelope (``slash_commands``, ``interactive``) to a live connection (or, while the app
        reconnects, as soon as it has one); returns its id."""
        envelope_id = str(uuid.uuid4())
        raw = json.dumps(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True}
        )
        with self._changed:
            self._sent_at[envelope_id] = time.monotonic()
            live = self._live()
            if not live:
                self._pending.append(raw)
                return envelope_id
            connection = live[-1]
        connection.send(raw)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict:
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"no ack for envelope {envelope_id}")
            return self.acks[envelope_id]
