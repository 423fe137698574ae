"""A Socket Mode client whose refreshes never hold envelopes past Slack's 3-second ack window.

Slack asks every Socket Mode connection to reconnect every few hours (``disconnect`` / ``refresh_requested``).
slack_sdk's builtin client then opens the new connection and closes the old one *on the thread that processes
envelopes*; closing waits for the old connection's receive loop to let go of its lock, which takes up to that
loop's receive timeout (3 s, the whole ack budget). An envelope arriving meanwhile was acked too late and the
person saw ``operation_timeout`` (tests/test_slack_refusals.py reproduces it against the stand-in). Here the old
connection is closed on a thread of its own, so envelope processing continues on the new connection at once.
"""

from __future__ import annotations

import threading
from typing import Any

from slack_sdk.socket_mode.builtin import SocketModeClient


class PromptRefreshClient(SocketModeClient):
    """slack_sdk's builtin Socket Mode client whose reconnect closes the old connection in the background."""

    def connect(self) -> None:
        old = self.current_session
        if old is not None:
            close = old.close
            old.close = lambda: threading.Thread(target=close, name="socket-mode-close", daemon=True).start()  # type: ignore[method-assign]
        super().connect()


def prompt_refresh(client: Any) -> Any:
    """Make the builtin ``client`` (already built, e.g. by the Socket Mode handler) reconnect promptly."""
    if not isinstance(client, SocketModeClient):
        raise TypeError(f"expected slack_sdk's builtin SocketModeClient, got {type(client).__name__}")
    client.__class__ = PromptRefreshClient  # same state and threads; only connect() differs
    return client
