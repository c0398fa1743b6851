"""Starting and stopping the API server: in the foreground (``python -m engine serve``) or in a thread of
the app's process (the Models page's *Serve* switch), where it shares the pages' model manager.

A server binds 127.0.0.1 unless told otherwise, and refuses any other address without an API key.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass

from engine.errors import InputError
from engine.knobs import check_knobs, knob
from engine.serve.answers import ServeState

KEY_VARIABLE = "STUDIO_SERVE_API_KEY"


@dataclass(frozen=True)
class ServeSpec:
    """Where the API listens and how much it takes at once."""

    host: str = knob("127.0.0.1", "the address to listen on; any other than loopback needs an API key")
    port: int = knob(8000, "the port to listen on", min=1, max=65535)
    api_key: str = knob("", f"the key clients send as 'Authorization: Bearer KEY' (default: ${KEY_VARIABLE}; none)")
    concurrency: int = knob(1, "requests answered at once; the rest wait their turn", min=1, max=16)
    queue: int = knob(64, "requests that may wait; more are answered 429 (busy)", min=0, max=4096)

    def __post_init__(self) -> None:
        check_knobs(self)

    def key(self) -> str:
        return self.api_key or os.environ.get(KEY_VARIABLE, "")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(spec: ServeSpec) -> None:
    """A clear error for a non-loopback address without a key, or a port that is taken."""
    if not is_loopback(spec.host) and not spec.key():
        raise InputError(
            f"Serving on {spec.host} would open the models to the network: give an API key "
            f"(--api-key or ${KEY_VARIABLE}), or serve on 127.0.0.1."
        )
    with socket.socket(socket.AF_INET6 if ":" in spec.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a stopped server's port is free
        try:
            probe.bind((spec.host, spec.port))
        except OSError as e:
            raise InputError(f"Cannot listen on {spec.host}:{spec.port}: {e.strerror or e}.") from e


def make_server(spec: ServeSpec, state: ServeState):
    import uvicorn  # noqa: PLC0415 - the server's libraries load only when a server starts

    from engine.serve.app import build_app  # noqa: PLC0415 - loads fastapi

    check_bind(spec)
    state.api_key = spec.key()
    state.concurrency, state.queue, state.url = spec.concurrency, spec.queue, spec.url
    # a stop waits at most 10 s for answers under way (an answer being generated is not interrupted)
    config = uvicorn.Config(
        build_app(state), host=spec.host, port=spec.port, log_level="warning", timeout_graceful_shutdown=10
    )
    return uvicorn.Server(config)


def serve_forever(spec: ServeSpec, state: ServeState) -> None:
    """Serve in the foreground until interrupted (Ctrl-C)."""
    make_server(spec, state).run()
    state.drain()


class ServerHandle:
    """A server running in a background thread of this process; :meth:`stop` ends it and frees the port."""

    def __init__(self, spec: ServeSpec, state: ServeState):
        self.spec, self.state = spec, state
        self.server = make_server(spec, state)
        self.started_at = time.time()
        self.thread = threading.Thread(target=self.server.run, name=f"serve-{spec.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            self.stop()
            raise InputError(f"The server did not start on {spec.host}:{spec.port}.")

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and self.server.started and not self.server.should_exit

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
