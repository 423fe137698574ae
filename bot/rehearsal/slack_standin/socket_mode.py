"""Slack's side of Socket Mode for the stand-in: a WebSocket server that says ``hello``, pushes envelopes
and collects the app's acknowledgements.

Simplified: one app, no ``disconnect`` refreshes, no ``num_connections`` bookkeeping. Envelopes have
Slack's shape: ``{"envelope_id", "type", "payload", "accepts_response_payload"}``; the app answers each
with ``{"envelope_id", "payload"?}`` (the ack body, e.g. an ephemeral reply to a slash command).
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from websockets.sync.server import Server, ServerConnection, serve


class SocketModeServer:
    """Serve Socket Mode on loopback; point ``SlackStandIn.socket_mode_url`` at :attr:`url`."""

    def __init__(self, app_id: str = "AMIGRATE") -> None:
        self.app_id = app_id
        self.acks: dict[str, dict] = {}
        self._connections: list[ServerConnection] = []
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

    def _session(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": self.app_id},
                    "debug_info": {"host": "standin", "approximate_connection_time": 18060},
                }
            )
        )
        with self._changed:
            self._connections.append(connection)
            self._changed.notify_all()
        try:
            for raw in connection:
                message = json.loads(raw)
                if "envelope_id" in message:
                    with self._changed:
                        self.acks[message["envelope_id"]] = message
                        self._changed.notify_all()
        finally:
            with self._changed:
                self._connections.remove(connection)

    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._connections, timeout):
                raise TimeoutError("the app did not connect over Socket Mode")

    def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Push one envelope (``slash_commands``, ``interactive``) to the connected app; returns its id."""
        envelope_id = str(uuid.uuid4())
        with self._changed:
            connection = self._connections[0]
        connection.send(
            json.dumps({"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True})
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict:
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"no ack for envelope {envelope_id}")
            return self.acks[envelope_id]
