"""A threaded production WSGI server (cheroot) that can also run in the background for tests and the demo."""

from __future__ import annotations

import threading
from collections.abc import Callable

from cheroot import wsgi

WSGIApp = Callable


class WSGIServer:
    """Serve ``app`` on ``host:port`` with a pool of ``threads`` (port 0 picks a free port).

    cheroot is CherryPy's HTTP server: HTTP/1.1 keep-alive, a bounded worker pool, clean shutdown.
    """

    def __init__(
        self,
        app: WSGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        threads: int = 16,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self._server = wsgi.Server((host, port), app, numthreads=threads, request_queue_size=128, shutdown_timeout=2)
        # How often the accept loop looks for a stop request (cheroot's default 0.5 s makes stop() slow).
        self._server.expiration_interval = 0.05
        if certfile and keyfile:
            from cheroot.ssl.builtin import BuiltinSSLAdapter

            self._server.ssl_adapter = BuiltinSSLAdapter(certfile, keyfile)
        self._scheme = "https" if certfile else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    @property
    def url(self) -> str:
        host = self._server.bind_addr[0]
        return f"{self._scheme}://{host}:{self.port}"

    def start(self) -> WSGIServer:
        """Bind now and serve on a daemon thread."""
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, name=f"wsgi-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve in the calling thread until stopped (Ctrl-C or :meth:`stop`)."""
        self._server.prepare()
        self._server.serve()

    def stop(self) -> None:
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WSGIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
