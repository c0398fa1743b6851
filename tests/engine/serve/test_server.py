"""The OpenAI-compatible server as a user meets it: ``python -m engine serve`` on a free loopback port, asked
with the official ``openai`` client (chat, streaming, completions, an adapter, RAG with sources), an
``openai:`` model source pointed at it for an evaluation, and bad input that gets error objects while
the server keeps serving."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from engine.models.active import active_spec, set_active
from engine.models.adapters import AdapterRegistry
from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_adapter(settings: Settings, name: str) -> None:
    """A LoRA adapter on the bundled model with nonzero lora_B (so it changes answers), in the registry."""
    from engine.finetune.lora import LoraSpec
    from engine.models.loader import load_model
    from engine.models.spec import DEFAULT_MODEL
    from tests.support.adapters import random_lora

    model = random_lora(load_model(replace(DEFAULT_MODEL, dtype="float32", device="cpu"), settings).model, scale=0.05)
    meta = {"base": DEFAULT_MODEL, "datasets": [], "lora": LoraSpec(), "prompt": "few-shot", "metrics": {}}
    AdapterRegistry(settings).save(model, name, meta)


@pytest.fixture(scope="module")
def served(tmp_path_factory, session_settings):
    """A server in its own process over a data dir of its own (with an adapter), and its settings."""
    data = tmp_path_factory.mktemp("serve-data")
    (data / "models").symlink_to(session_settings.models_dir, target_is_directory=True)
    settings = Settings(data_dir=data, shared_data_dir=session_settings.shared_data_dir)
    random_adapter(settings, "ada")
    # full precision: on a CPU without native bfloat16 it reads prompts faster than the int4 default
    set_active(settings, model="smollm2-135m-instruct")
    port = free_port()
    env = os.environ | {"STUDIO_DATA_DIR": str(data), "STUDIO_COMPILE_DECODER": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (data / "serve.log").open("w")
    command = [sys.executable, "-m", "engine", "serve", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            assert process.poll() is None, (data / "serve.log").read_text()
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the server did not start: " + (data / "serve.log").read_text())
    yield {"url": url, "settings": settings, "process": process}
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the server did not stop within 30 s of SIGTERM")


@pytest.fixture(scope="module")
def client(served):
    from openai import OpenAI

    return OpenAI(base_url=served["url"] + "/v1", api_key="none", max_retries=0, timeout=300)


def test_models_lists_default_the_catalog_adapters_and_knowledge_bases(client) -> None:
    names = [m.id for m in client.models.list()]
    assert names[0] == "default"
    assert "smollm2-135m-instruct" in names and "smollm2-135m-instruct+ada" in names
    assert "rag:studio-docs" in names


def test_chat_streamed_and_not_give_the_same_greedy_answer(client) -> None:
    answer = client.chat.completions.create(model="default", messages=QUESTION, max_tokens=24)
    text = answer.choices[0].message.content
    assert "Paris" in text and answer.usage.completion_tokens > 0 and answer.usage.prompt_tokens > 5
    stream = client.chat.completions.create(model="default", messages=QUESTION, max_tokens=24, stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len([p for p in pieces if p]) > 1  # it came in pieces
    assert "".join(pieces) == text


def test_completions_continue_a_raw_prompt(client) -> None:
    done = client.completions.create(model="default", prompt="The capital of France is", max_tokens=4)
    assert "Paris" in done.choices[0].text and done.choices[0].finish_reason in ("length", "stop")


def test_an_adapter_answers_as_it_does_in_process(client, served) -> None:
    from engine.models.generation import SamplingSpec, load_generator

    remote = client.chat.completions.create(model="smollm2-135m-instruct+ada", messages=QUESTION, max_tokens=16)
    local = load_generator(replace(active_spec(served["settings"]), adapter="ada"), served["settings"])
    expected = local.generate([QUESTION], SamplingSpec(max_new_tokens=16))[0].text
    assert remote.choices[0].message.content == expected


def test_rag_answers_carry_their_sources(client) -> None:
    ask = [{"role": "user", "content": "Which command installs and starts the app?"}]
    answer = client.chat.completions.create(model="rag:studio-docs", messages=ask)
    sources = answer.model_extra["sources"]
    assert answer.choices[0].message.content.strip()
    assert sources and {"n", "title", "source", "score", "cited", "text"} <= set(sources[0])
    assert any(s["source"] == "README.md" for s in sources)
    stream = client.chat.completions.create(model="rag:studio-docs", messages=ask, stream=True)
    last = list(stream)[-1]
    assert last.model_extra["sources"] == sources and last.model_extra["answer"] == answer.choices[0].message.content


def test_an_openai_model_source_evaluates_as_the_model_does_in_process(served, shared_data) -> None:
    """Five HotpotQA questions (closed book), in process and through the server: the same answers, EM and F1."""
    from engine.evaluation.runner import EvalSpec, prepare_evaluation, run_evaluation

    settings = served["settings"]
    local = EvalSpec(dataset="hotpotqa", mode="closed-book", limit=5)  # the active model: the default's weights
    remote = replace(local, model=f"openai:{served['url']}/v1#default")
    results = []
    for spec in (local, remote):
        generator, embedder, store = prepare_evaluation(spec, settings)
        results.append(run_evaluation(spec, generator, embedder, store, settings, tracker=None))
    assert [r["prediction"] for r in results[0].rows] == [r["prediction"] for r in results[1].rows]
    assert results[0].metrics["em"] == results[1].metrics["em"]
    assert results[0].metrics["f1"] == results[1].metrics["f1"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "nope", "messages": QUESTION}, 404, "No model 'nope'"),
        ({"model": "default", "messages": []}, 400, "messages"),
        ({"model": "default", "messages": QUESTION, "n": 2}, 400, "n=1"),
        ({"model": "default", "messages": [{"role": "user", "content": "word " * 9000}]}, 400, "context"),
        ({"model": "rag:no-such-kb", "messages": QUESTION}, 404, "no-such-kb"),
        ({"model": "default+no-such-adapter", "messages": QUESTION}, 404, "no-such-adapter"),
    ],
)
def test_bad_requests_get_openai_error_objects(served, body, status, words) -> None:
    response = httpx.post(served["url"] + "/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and error["type"]


def test_malformed_json_and_a_disconnect_mid_stream_leave_the_server_serving(served, client) -> None:
    url = served["url"] + "/v1/chat/completions"
    bad = httpx.post(url, content=b'{"model": "default", "messages": [', headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    body = {"model": "default", "messages": QUESTION, "max_tokens": 200, "stream": True}
    with httpx.stream("POST", url, json=body, timeout=60) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ") and json.loads(first[6:])["object"] == "chat.completion.chunk"
    # the client went away after the first event: the next request is answered
    answer = client.chat.completions.create(model="default", messages=QUESTION, max_tokens=8)
    assert answer.choices[0].message.content
    assert served["process"].poll() is None


def test_requests_are_logged_to_mlflow_like_the_query_page(client, served) -> None:
    from engine.tracking import QUERY, Tracker

    client.chat.completions.create(model="default", messages=QUESTION, max_tokens=4)
    tracker = Tracker(served["settings"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not tracker.recent(QUERY, 50):
        time.sleep(0.5)
    runs = tracker.recent(QUERY, 50)
    assert runs, "no request was logged"
