"""The API server under load: requests/s and p50/p95 latency for 1, 4 and 16 concurrent clients, next to
the time the same answer takes in process.

    .venv/bin/python bench/serve.py --out docs/benchmarks.md

A server (``python -m engine serve``, the active model: the default) runs on a free loopback port over a
data dir of its own that shares the checkout's converted model. Each client sends chat completions
(greedy, ``max_tokens`` 32) for HotpotQA questions asked closed book, one after another; every request
must come back 200 (the table counts any that did not). The in-process column is ``Generator.generate``
of the same messages in this process, one at a time. The fast decoder is left uncompiled on both sides
(``STUDIO_COMPILE_DECODER=0``), so the two compare like for like.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402
from engine.settings import Settings, load_settings  # noqa: E402

MAX_TOKENS = 32


def questions(shared: Path, n: int) -> list[list[dict]]:
    with (shared / "hotpotqa-dev.jsonl").open() as f:
        rows = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
    return [[{"role": "user", "content": r["question"]}] for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, port: int) -> subprocess.Popen:
    env = os.environ | {"STUDIO_DATA_DIR": str(data), "STUDIO_COMPILE_DECODER": "0"}
    log = (data / "serve.log").open("w")
    command = [sys.executable, "-m", "engine", "serve", "--port", str(port), "--no-mlflow"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start: " + (data / "serve.log").read_text())


def load(url: str, asks: list[list[dict]], clients: int) -> dict:
    """``clients`` threads share the questions; each request's latency, the wall time, the failures."""
    latencies, failed, lock = [], [], threading.Lock()
    queue = list(enumerate(asks))

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    _, messages = queue.pop()
                began = time.perf_counter()
                body = {"model": "default", "messages": messages, "max_tokens": MAX_TOKENS}
                response = http.post(f"{url}/v1/chat/completions", json=body)
                with lock:
                    (latencies if response.status_code == 200 else failed).append(time.perf_counter() - began)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"rps": len(latencies) / wall, "p50": statistics.median(latencies), "p95": cuts[18], "failed": len(failed)}


def in_process(settings: Settings, asks: list[list[dict]]) -> float:
    """The median time of one answer generated in this process with the same model and decoding."""
    os.environ["STUDIO_COMPILE_DECODER"] = "0"
    from engine.models.active import active_spec
    from engine.models.generation import SamplingSpec, load_generator

    generator = load_generator(active_spec(settings), settings)
    generator.generate(asks[:1], SamplingSpec(max_new_tokens=MAX_TOKENS))  # warm
    times = []
    for messages in asks:
        began = time.perf_counter()
        generator.generate([messages], SamplingSpec(max_new_tokens=MAX_TOKENS))
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    p.add_argument("--out", help="append the table to this Markdown file")
    a = p.parse_args()
    studio = load_settings()
    asks = questions(studio.shared_data_dir, a.requests)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "models").symlink_to(studio.models_dir.resolve(), target_is_directory=True)
        settings = Settings(data_dir=data, shared_data_dir=studio.shared_data_dir)
        local = in_process(settings, asks)
        port = free_port()
        server = start_server(data, port)
        try:
            url = f"http://127.0.0.1:{port}"
            load(url, asks[:2], 1)  # warm
            rows = [(c, load(url, asks, c)) for c in (1, 4, 16)]
        finally:
            server.terminate()
            server.wait(30)
    lines = [
        f"### API server under load ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {a.requests} requests "
        f"each, {MAX_TOKENS} new tokens, greedy)",
        "",
        f"In process, one answer: median {local:.2f} s.",
        "",
        "| clients | requests/s | p50 latency (s) | p95 latency (s) | failed |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(f"| {c} | {r['rps']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['failed']} |" for c, r in rows),
        "",
    ]
    emit("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
