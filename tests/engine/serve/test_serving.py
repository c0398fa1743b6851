"""The server's guards without a model process: where it may listen, the key, the queue, the in-app server
that the Models page switches on and off, and remote model sources that are wrong or down."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from engine.errors import InputError
from engine.models.generation import load_generator
from engine.models.manager import ModelManager
from engine.models.spec import spec_for
from engine.serve.answers import ServeState
from engine.serve.app import Gate
from engine.serve.protocol import ApiError
from engine.serve.server import ServerHandle, ServeSpec, check_bind

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_network_address_needs_a_key_and_a_taken_port_is_named(monkeypatch) -> None:
    monkeypatch.delenv("STUDIO_SERVE_API_KEY", raising=False)
    with pytest.raises(InputError, match="API key"):
        check_bind(ServeSpec(host="0.0.0.0", port=free_port()))
    check_bind(ServeSpec(host="0.0.0.0", port=free_port(), api_key="secret"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(InputError, match="Cannot listen on 127.0.0.1"):
            check_bind(ServeSpec(port=taken.getsockname()[1]))
    with pytest.raises(InputError, match="port must be at most 65535"):
        ServeSpec(port=70000)


def test_the_command_refuses_a_network_address_without_a_key() -> None:
    command = [sys.executable, "-m", "engine", "serve", "--host", "0.0.0.0", "--port", str(free_port())]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("error: Serving on 0.0.0.0 would open the models") and "Traceback" not in done.stderr


def test_the_gate_queues_what_it_can_and_refuses_the_rest() -> None:
    async def scenario() -> list:
        gate = Gate(concurrency=1, queue=1)
        await gate.enter()  # at work
        waiting = asyncio.create_task(gate.enter())  # queued
        await asyncio.sleep(0.01)
        with pytest.raises(ApiError) as busy:
            await gate.enter()
        gate.leave()
        await asyncio.wait_for(waiting, 1)  # the queued one gets its turn
        return [busy.value.status, gate.waiting]

    with ThreadPoolExecutor(1) as thread:  # a loop of its own: another test may have left one in this thread
        assert thread.submit(asyncio.run, scenario()).result(timeout=30) == [429, 0]


def test_the_in_app_server_shares_the_manager_checks_the_key_and_frees_its_port(generator, settings) -> None:
    manager = ModelManager(lambda spec: generator, budget_gb=8, default=generator.loaded.spec)
    port = free_port()
    handle = ServerHandle(ServeSpec(port=port, api_key="secret"), ServeState(settings, manager, log_requests=False))
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        body = {"model": "default", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer secret"})
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] > 0
        assert manager.loaded()[0].generator is generator  # the page's manager answered
    finally:
        handle.stop()
    assert not handle.running
    check_bind(ServeSpec(port=port))  # Stop frees the port: a server may listen there again


def test_remote_sources_that_are_malformed_or_down_are_sentences() -> None:
    with pytest.raises(InputError, match="not of the form openai:<base_url>#<model>"):
        spec_for("openai:localhost:8080")
    spec = spec_for("openai:http://127.0.0.1:9/v1#qwen")
    assert spec.name == "qwen@127.0.0.1:9" and spec.gguf_file is None
    began = time.monotonic()
    with pytest.raises(InputError, match="cannot be reached: is it running"):
        load_generator(spec)
    assert time.monotonic() - began < 30  # a sentence, not a hang
