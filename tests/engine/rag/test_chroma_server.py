"""Knowledge bases on a Chroma server (``chroma run``), chosen by configuration alone."""

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.rag.chunking import Chunk
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings
from tests.support.appserver import free_port


@pytest.fixture
def chroma_server(tmp_path):
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        exe = shutil.which("chroma")
    port = free_port()
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("chroma run did not start")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_store_on_a_chroma_server(chroma_server, tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server)
    store = KnowledgeBaseStore(settings, embedder)
    chunks = [
        Chunk(f"id-{i}", f"doc-{i}", title, text, "test", 0, {})
        for i, (title, text) in enumerate(
            [("Paris", "Paris is the capital of France."), ("Berlin", "Berlin is the capital of Germany.")]
        )
    ]
    assert store.add("team-kb", chunks) == 2
    # A second client (a teammate) sees the same knowledge base through the server.
    other = KnowledgeBaseStore(settings, embedder)
    assert other.count("team-kb") == 2
    assert other.query("team-kb", ["What is the capital of Germany?"], k=1)[0][0].title == "Berlin"
    assert not (settings.data_dir / "chroma").exists()  # nothing was stored on local disk
