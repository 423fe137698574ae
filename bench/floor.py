"""The harness floor: the bot's HTTP server (cheroot, same thread count) with an app that does nothing.

``python -m bench.floor`` prints its URL and serves until stdin closes. The benchmark sends it the same signed
commands, from the same senders, on the same CPU as the bot, so the ack figure can be read against what the
HTTP server, loopback and the load generator alone cost on this machine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from bot.app import HTTP_THREADS
from bot.httpserver import WSGIServer


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]


def main() -> int:
    server = WSGIServer(app, "127.0.0.1", 0, threads=HTTP_THREADS).start()
    print(server.url, flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
