"""A real `streamlit run` of the Studio for the browser tests, and Debian's Chromium to drive it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 90


@dataclass(frozen=True)
class StudioServer:
    url: str
    data_dir: Path
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except (OSError, urllib.error.URLError):
        return False


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; a missing browser skips the e2e tests locally but fails them in CI."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"{CHROMIUM} is missing: run `make browser` (as root) to apt-install Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the end-to-end tests: {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path) -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (never a browser that Playwright downloads)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory, session_settings, generator) -> Iterator[StudioServer]:
    """`streamlit run Home.py` on a free port with a fresh data dir sharing the converted model cache.

    Depending on ``generator`` makes sure the bundled model is converted before the app starts.
    """
    data_dir = tmp_path_factory.mktemp("studio-data")
    session_settings.models_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models").symlink_to(session_settings.models_dir.resolve(), target_is_directory=True)
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir)}
    env.pop("STUDIO_CHROMA_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "Home.py",
             "--server.port", str(port), "--server.headless", "true"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that teardown stops every child
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{_read(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit was not healthy after {STARTUP_TIMEOUT_S} s:\n{_read(log)}")
            time.sleep(0.5)
        yield StudioServer(url=url, data_dir=data_dir, log=log)
    finally:
        _stop(proc)
        # Shown by pytest only when a test failed: the server's side of the story.
        print(f"--- {log} ---\n{_read(log)}")
