"""A second OpenAI-compatible endpoint: llama-cpp-python's server on a GGUF file the Studio exported, asked through
an ``openai:`` model source. Needs ``llama-cpp-python`` (``bench/requirements-llamacpp.txt``; it compiles for about
5 minutes), so it is skipped where that is not installed; docs/serving.md shows the run where it was."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed (optional)"
)
QUESTIONS, NEW_TOKENS = 20, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_llamacpp_serves_the_exported_gguf_as_the_studio_answers(settings, shared_data, tmp_path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.evaluation.hotpotqa import load_hotpotqa
    from engine.models.export import export_model
    from engine.models.generation import SamplingSpec, load_generator

    folder = export_model(settings, None, "gguf-f16", tmp_path / "export")
    gguf = next(folder.glob("*.gguf"))
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "studio",
               "--port", str(port), "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 2)]  # fmt: skip
    log = (tmp_path / "llama.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None, (tmp_path / "llama.log").read_text()[-2000:]
                time.sleep(0.5)
        remote = load_generator(f"openai:http://127.0.0.1:{port}/v1#studio", settings)
        chats = [
            [{"role": "user", "content": item.question}]
            for item in load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=QUESTIONS)
        ]
        sampling = SamplingSpec(max_new_tokens=NEW_TOKENS)
        served = [c.text for c in remote.generate(chats, sampling, batch_size=1)]
    finally:
        server.terminate()
        server.wait(30)
    # the same file through transformers (as the export's round trip), asked with the same chat template
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf.name, dtype=torch.float32)
    local = []
    for chat in chats:
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False)
        local.append(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
    same = sum(a.strip() == b.strip() for a, b in zip(served, local, strict=True))
    print(f"llama.cpp and transformers on the exported F16 file: {same} of {QUESTIONS} answers identical")
    assert all(served) and same >= QUESTIONS // 2
