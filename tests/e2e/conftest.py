"""A real `streamlit run` of the Studio for the browser tests, and Debian's Chromium to drive it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.appserver import AppServer, start_app

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
def studio_server(tmp_path_factory, session_settings, generator) -> Iterator[AppServer]:
    """`streamlit run Home.py` on a free port with a fresh data dir sharing the converted model cache.

    Depending on ``generator`` makes sure the bundled model is converted before the app starts.
    """
    data_dir = tmp_path_factory.mktemp("studio-data")
    session_settings.models_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models").symlink_to(session_settings.models_dir.resolve(), target_is_directory=True)
    server = start_app(data_dir)
    try:
        try:
            server.wait_healthy(STARTUP_TIMEOUT_S)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server
    finally:
        server.stop()
        # Shown by pytest only when a test failed: the server's side of the story.
        print(f"--- {server.log} ---\n{server.read_log()}")
