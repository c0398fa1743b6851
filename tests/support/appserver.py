"""Start and stop the Studio's Streamlit server as a child process (tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from engine.settings import ROOT


@dataclass
class AppServer:
    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen
    started: float  # time.perf_counter() at launch

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                return response.read().decode().strip() == "ok"
        except (OSError, urllib.error.URLError):
            return False

    def wait_healthy(self, timeout: float = 90) -> float:
        """Seconds from launch until the server answers its health check."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}:\n{self.read_log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit was not healthy after {timeout} s:\n{self.read_log()}")
            time.sleep(0.1)
        return time.perf_counter() - self.started

    def read_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(data_dir: Path) -> AppServer:
    """The Studio (``python -m ui.serve``, as ``make run`` starts it) on a free port with
    ``STUDIO_DATA_DIR=data_dir``, in its own process group."""
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir)}
    env.pop("STUDIO_CHROMA_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    port = free_port()
    log = Path(data_dir) / "streamlit.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ui.serve", "--server.port", str(port), "--server.headless", "true"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that stop() ends every child
        )
    return AppServer(f"http://127.0.0.1:{port}", Path(data_dir), log, process, started)
