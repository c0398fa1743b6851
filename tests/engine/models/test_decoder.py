"""The fast decoder of the int4-weight path: same weights, same answers, compiled and not."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from engine.benchmark.speed import forced_generate, rag_prompts
from engine.models.decoder import FastDecoder, chooser, unsupported
from engine.models.generation import SamplingSpec, load_generator
from engine.models.quantize import Int4WeightLinear
from engine.models.spec import DEFAULT_MODEL

INT4 = replace(DEFAULT_MODEL, dtype="float32", device="cpu", quantization="int4-weight")
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = chooser(0.0, 1.0, None)


@pytest.fixture(scope="module")
def generator(session_settings):
    return load_generator(INT4, session_settings)


def tokens(decoder: FastDecoder, prompt: list[int], n: int) -> list[int]:
    return list(decoder.decode(prompt, n, GREEDY, lambda token: False))


def test_only_the_int4_path_on_a_cpu_has_one(generator, session_settings):
    assert generator.decoder is not None
    full = load_generator(replace(INT4, quantization="none"), session_settings)
    assert full.decoder is None and "int4-weight" in unsupported(full.loaded)


def test_joined_layers_compute_what_the_layers_did(generator):
    attn = generator.model.model.layers[0].self_attn
    x = torch.randn(3, attn.q_proj.in_features)
    joined = generator.decoder.layers[0]["qkv"]
    separate = torch.cat([attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)], -1)
    torch.testing.assert_close(joined(x), separate)
    # the layers' weights are views of the joined ones: not held twice
    assert attn.q_proj.packed.untyped_storage().data_ptr() == joined.packed.untyped_storage().data_ptr()
    assert isinstance(joined, Int4WeightLinear) and joined.out_features == separate.shape[-1]


def test_reads_a_prompt_as_the_model_does(generator, shared_data):
    prompt = generator.encode(rag_prompts(shared_data, 1, 300, generator.encode)[0])
    assert len(prompt) == 300
    with torch.inference_mode():
        expected = generator.model(input_ids=torch.tensor([prompt])).logits[0, -1]
        generator.decoder.forget()
        generator.decoder.cache = generator.decoder.cache or generator.decoder.new_cache()
        got = generator.decoder.read_prompt(prompt)
    assert int(got.argmax()) == int(expected.argmax())
    assert (got - expected).abs().max() < 0.5  # bfloat16 products summed in another order


def test_greedy_answers_match_generate(generator):
    row = generator.encode(QUESTION)
    with torch.inference_mode():
        out = generator.model.generate(input_ids=torch.tensor([row]), max_new_tokens=12, do_sample=False)
    expected = generator.strip_padding(out[0, len(row) :].tolist())
    generator.decoder.forget()
    with generator.lock:
        assert list(generator.decode(row, SamplingSpec(max_new_tokens=12))) == expected
    assert generator.generate([QUESTION])[0].text == "The capital of France is Paris."


def test_a_prompt_sharing_a_beginning_reads_only_its_new_tokens(generator):
    first = generator.encode(QUESTION)
    second = generator.encode([{"role": "user", "content": "What is the capital of Italy?"}])
    decoder = generator.decoder
    decoder.forget()
    fresh = tokens(decoder, second, 8)
    tokens(decoder, first, 5)
    assert decoder.tokens[: len(first)] == first
    assert tokens(decoder, second, 8) == fresh  # the shared beginning came from the cache


def test_stops_at_stop_strings_end_of_sequence_and_length(generator):
    stopped = generator.generate([QUESTION], SamplingSpec(max_new_tokens=24, stop=("Paris",)))[0]
    assert stopped.text == "The capital of France is " and stopped.new_tokens < 8
    short = generator.generate([QUESTION], SamplingSpec(max_new_tokens=3))[0]
    assert short.new_tokens == 3
    row = generator.encode(QUESTION)
    with generator.lock:
        forced = list(generator.decode(row, SamplingSpec(max_new_tokens=20), forced=True))
    assert len(forced) == 20  # past the end-of-sequence token, which an answer stops at
    assert generator.generate([QUESTION], SamplingSpec(max_new_tokens=20))[0].new_tokens < 20


def test_sampling_is_seeded(generator):
    sampling = SamplingSpec(max_new_tokens=10, temperature=1.0, seed=7)
    assert generator.generate([QUESTION], sampling)[0].text == generator.generate([QUESTION], sampling)[0].text
    texts = {generator.generate([QUESTION], replace(sampling, seed=s))[0].text for s in range(6)}
    assert len(texts) > 1


def test_too_long_a_prompt_goes_through_generate(generator):
    capacity = generator.decoder.capacity
    assert generator.fast(capacity - 16, SamplingSpec(max_new_tokens=16))
    assert not generator.fast(capacity - 15, SamplingSpec(max_new_tokens=16))
    long = [{"role": "user", "content": "Paris is the capital of France. " * 300 + "What is the capital of France?"}]
    completion = generator.generate([long], SamplingSpec(max_new_tokens=6))[0]
    assert completion.prompt_tokens > capacity and completion.new_tokens > 0


def test_the_compiled_step_answers_as_the_uncompiled_one(generator, shared_data):
    decoder = generator.decoder
    prompt = generator.encode(rag_prompts(shared_data, 1, 300, generator.encode)[0])
    decoder.forget()
    eager = tokens(decoder, prompt, 12)
    assert decoder.compile() > 0 and decoder.compiled.is_set() and decoder.step is not decoder.forward
    decoder.forget()
    assert tokens(decoder, prompt, 12) == eager
    forced_generate(generator, [prompt, prompt], 4)  # the benchmark's path: each prompt read in full
    assert decoder.tokens == prompt + decoder.tokens[len(prompt) :] and len(decoder.tokens) == len(prompt) + 3
