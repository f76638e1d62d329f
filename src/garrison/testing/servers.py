"""A real HTTP server for tests: an ASGI app on uvicorn, on a free port of 127.0.0.1, in a daemon thread.

Garrison's tests talk to the guarded service and the dashboard over real sockets instead of mocking them; this is
the one way they start one. Stop it with ``server.should_exit = True`` and join the thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["serve_in_thread"]


def serve_in_thread(app: Any, *, timeout_s: float = 30.0) -> tuple[Any, threading.Thread, str]:
    """Serve ``app`` (lifespan off, no access log) and return ``(server, thread, base_url)`` once it listens;
    :class:`RuntimeError` when it does not within ``timeout_s``."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                           lifespan="off", ws="none"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"
