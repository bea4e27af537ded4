"""A webhook receiver for the monitoring and gateway tests: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Hook:
    """A real HTTP server on 127.0.0.1 that records POSTed JSON and answers with the statuses
    queued in ``statuses`` (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.lock:
                    status = hook.statuses.pop(0) if hook.statuses else 200
                    if status == 200:
                        hook.received.append(json.loads(body))
                        hook.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def opened(self) -> list[dict[str, Any]]:
        """The alerts delivered as opened."""
        return [r for r in self.received if r["change"] == "opened"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
