"""Gold-scored pairs: which sampled answers make a pair, and sampling for real with the bundled model on the
shared HotpotQA training split, saved as a real dataset version."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.errors import InputError
from engine.preferences.sampling import (
    Candidate,
    GoldPairSpec,
    draw,
    pick,
    sample_pairs,
    samples_file,
    save_gold_pairs,
)
from engine.qa.preference import is_pair, rejected_of
from engine.qa.schema import QARecord
from engine.qa.versions import DatasetStore


def cand(text: str, f1: float, greedy: bool = False) -> Candidate:
    return Candidate(text, text, f1, greedy)


def test_the_best_answer_is_chosen_against_a_clearly_worse_one() -> None:
    wrong, right = cand("Bonn", 0.0, greedy=True), cand("Berlin", 100.0)
    assert pick([wrong, right, cand("Berlin", 100.0)], margin=50, min_chosen=50) == (right, wrong)
    # the worst answer is rejected, unless the greedy one is clearly worse too: the pair then moves what is deployed
    assert pick([cand("Paris", 100.0, True), cand("Rome", 0.0), cand("Bonn", 10.0)], 50, 50)[1].text == "Rome"
    assert pick([cand("Paris", 100.0), cand("Rome", 0.0), cand("Bonn", 10.0, True)], 50, 50)[1].text == "Bonn"
    # among equally good answers the greedy one is chosen
    assert pick([cand("Paris!", 100.0), cand("Paris", 100.0, True), cand("x", 0.0)], 50, 50)[0].greedy


def test_no_pair_without_a_good_answer_or_a_clearly_worse_one() -> None:
    assert pick([cand("a", 40.0, True), cand("b", 0.0)], margin=30, min_chosen=50) is None
    assert pick([cand("a", 100.0, True), cand("b", 60.0)], margin=50, min_chosen=50) is None
    assert pick([cand("a", 100.0, True), cand("a", 0.0)], margin=50, min_chosen=50) is None  # one text
    assert pick([cand("", 100.0, True), cand("b", 0.0)], margin=50, min_chosen=50) is None


def test_the_test_split_never_makes_pairs() -> None:
    with pytest.raises(InputError, match="never made from the test split"):
        GoldPairSpec(split="test")
    with pytest.raises(InputError):
        GoldPairSpec(name="../x")


@pytest.fixture(scope="module")
def float32(session_settings):
    """The bundled model in float32 (bfloat16 is emulated on many CPUs, 5x slower): no fast decoder, one batch."""
    from engine.models.generation import load_generator
    from engine.models.spec import DEFAULT_MODEL

    return load_generator(replace(DEFAULT_MODEL, dtype="float32"), session_settings)


@pytest.mark.slow
def test_sampled_answers_scored_against_the_gold_make_pairs(settings, float32, embedder) -> None:
    generator = float32
    spec = GoldPairSpec(name="gold", limit=4, samples=3, temperature=1.5, margin=20, min_chosen_f1=20, k=3,
                        max_source_chars=150)  # fmt: skip
    pairs, tally = sample_pairs(spec, generator, embedder, settings)
    assert tally["questions"] == 4 and tally["pairs"] == len(pairs)
    assert tally["pairs"] + tally["no_good_answer"] + tally["no_worse_answer"] == 4
    assert pairs, tally  # with 4 answers at a high temperature some question has a good and a bad one
    for pair in pairs:
        detail = pair.metadata["detail"]
        assert is_pair(pair) and pair.metadata["source"] == "gold"
        assert detail["chosen_f1"] - detail["rejected_f1"] >= 20 and detail["chosen_f1"] >= 20
        assert len(detail["candidates"]) == 4 and detail["candidates"][0]["greedy"]
        texts = {c["text"] for c in detail["candidates"]}
        assert pair.answer in texts and rejected_of(pair) in texts
        asked = pair.metadata["messages"][-1]
        assert asked["role"] == "user" and pair.question in asked["content"]
    # the answers are kept as they come: a second sampling (longer, or with another margin) reads them
    path = samples_file(spec, spec.eval_spec(settings), settings)
    assert len(path.read_text().splitlines()) == 4
    with path.open("a") as f:
        f.write('{"id": "cut short by a ki')  # a kill in the middle of a line: that question is asked again
    again, kept = sample_pairs(spec, generator, embedder, settings)
    assert kept["answered_before"] == 4 and [p.id for p in again] == [p.id for p in pairs]
    looser, _ = sample_pairs(replace(spec, margin=1, min_chosen_f1=0), generator, embedder, settings)
    assert len(looser) >= len(pairs)
    manifest = save_gold_pairs(spec, pairs, tally, generator.name, settings)
    assert manifest.counts["sources"] == {"gold": len(pairs)} and manifest.counts["funnel"]["questions"] == 4
    assert len(DatasetStore(settings).load("gold", manifest.id)) == len(pairs)


@pytest.mark.slow
def test_samples_are_drawn_apart_and_seeded_on_both_decoders(settings, float32) -> None:
    from engine.models.generation import load_generator
    from engine.models.sampling import SamplingSpec
    from engine.models.spec import DEFAULT_MODEL

    spec = GoldPairSpec(samples=4, temperature=1.5)
    int4 = load_generator(replace(DEFAULT_MODEL, quantization="int4-weight"), settings)
    for model, fast in ((int4, True), (float32, False)):  # the fast decoder, or one batch
        row = model.encode([{"role": "user", "content": "Name a colour and a fruit."}])
        assert model.fast(len(row), SamplingSpec()) == fast
        first = draw(model, row, SamplingSpec(max_new_tokens=8), spec, "q1")
        assert len(first) == 4 and len(set(first)) > 1, first
        assert draw(model, row, SamplingSpec(max_new_tokens=8), spec, "q1") == first


def test_the_command_says_what_is_wrong_before_loading_a_model(settings, capsys) -> None:
    from engine.cli.preferences import main

    assert main(["sample", "--mode", "kb"]) == 2
    assert "Mode kb asks a knowledge base" in capsys.readouterr().err
    DatasetStore(settings).save("plain", [QARecord("Who?", "Ada")])
    assert main(["sample", "--name", "plain"]) == 2
    assert "holds QA records, not preference pairs" in capsys.readouterr().err
