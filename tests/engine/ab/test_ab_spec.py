"""A/B experiment specs: defaults, checks with clear messages, the dict and command-line forms."""

from __future__ import annotations

import pytest

from engine.ab.spec import ExperimentSpec, VariantSpec, parse_variant, to_eval_spec, to_model_spec
from engine.errors import InputError


def two(**kwargs) -> ExperimentSpec:
    return ExperimentSpec("exp", (VariantSpec("base"), VariantSpec("int4", quantization="int4-weight")), **kwargs)


def test_defaults_and_round_trip():
    spec = two()
    assert (spec.data, spec.split, spec.limit, spec.mode, spec.parallel) == (
        "hotpotqa-dev.jsonl", "test", 100, "distractor", "auto",
    )  # fmt: skip
    assert spec.reference == "base" and spec.variant("int4").quantization == "int4-weight"
    v = spec.variants[0]
    assert (v.model, v.quantization, v.dtype, v.adapter, v.prompt, v.k, v.temperature, v.seed) == (
        "", "none", "auto", "", "", 5, 0.0, 0,
    )  # fmt: skip
    data = spec.to_dict()
    assert data["variants"][1] == spec.variants[1].to_dict()
    assert ExperimentSpec.from_dict(data) == spec
    flat = spec.flat()
    assert flat["limit"] == "100" and flat["variant/int4/quantization"] == "int4-weight"
    assert all(isinstance(v, str) for v in flat.values())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ExperimentSpec("e", (VariantSpec("one"), VariantSpec("one"))), "unique: one is used more than once"),
        (lambda: ExperimentSpec("e", (VariantSpec("one"),)), "at least 2 variants; got 1"),
        (lambda: ExperimentSpec("e", ()), "at least 2 variants; got 0"),
        (lambda: VariantSpec("one", quantization="int3"), "unknown quantization 'int3'"),
        (lambda: VariantSpec("one", dtype="float8"), "unknown dtype 'float8'"),
        (lambda: VariantSpec("one", prompt="chain"), "unknown prompt 'chain'"),
        (lambda: VariantSpec("one", k=0), "k (sources per question) must be at least 1"),
        (lambda: VariantSpec("one", temperature=-1), "temperature must be 0"),
        (lambda: VariantSpec("../x"), "Invalid variant name '../x'"),
        (lambda: VariantSpec("a"), "Invalid variant name 'a'"),  # the one rule: 3 to 64 characters
        (lambda: two(parallel="sometimes"), "Unknown parallel setting 'sometimes': choose one of auto, always, never"),
        (lambda: two(mode="open-book"), "Unknown mode 'open-book'"),
        (lambda: two(mode="kb"), "Mode kb needs a knowledge base"),
        (lambda: two(split="dev"), "Unknown split 'dev'"),
        (lambda: two(limit=1), "at least 2 items"),
        (lambda: two(version="abc"), "version was given without its dataset"),
        (lambda: two(dataset="../up"), "Invalid dataset name"),
        (lambda: ExperimentSpec(" ", (VariantSpec("one"), VariantSpec("two"))), "needs a name"),
    ],
)
def test_bad_specs_say_what_is_wrong(make, message):
    with pytest.raises(InputError) as found:
        make()
    assert message in str(found.value)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(InputError, match="Unknown experiment field 'models'"):
        ExperimentSpec.from_dict({"name": "e", "models": []})
    with pytest.raises(InputError, match="Unknown variant field 'quant'"):
        ExperimentSpec.from_dict({"name": "e", "variants": [{"name": "a", "quant": "4bit"}, {"name": "b"}]})
    with pytest.raises(InputError, match="needs a name"):
        VariantSpec.from_dict({"model": "x"})


def test_command_line_variants():
    v = parse_variant("name=int4, quantization=int4-weight,k=3,temperature=0.7,seed=4")
    assert v == VariantSpec("int4", quantization="int4-weight", k=3, temperature=0.7, seed=4)
    with pytest.raises(InputError, match="k must be a number, not 'many'"):
        parse_variant("name=a,k=many")
    with pytest.raises(InputError, match="key=value pairs"):
        parse_variant("name=a,int4")
    with pytest.raises(InputError, match="Unknown variant field 'colour'"):
        parse_variant("name=a,colour=red")
    with pytest.raises(InputError, match="name is given twice"):
        parse_variant("name=a,name=b")


def test_translation_to_model_and_eval_specs():
    spec = two(limit=20, split="validation", batch_size=2)
    base, int4 = (to_model_spec(v) for v in spec.variants)
    assert base.quantization == "none" and base.device == "auto" and base.name == "smollm2-135m-instruct"
    assert int4.quantization == "int4-weight" and int4.device == "cpu"  # torch's int4 runs on the CPU only
    ev = to_eval_spec(VariantSpec("zero", prompt="zero-shot", k=3, dtype="float32"), spec)
    assert (ev.limit, ev.split, ev.k, ev.prompt, ev.dtype, ev.batch_size, ev.mode) == (
        20, "validation", 3, "zero-shot", "float32", 2, "distractor",
    )  # fmt: skip
    with pytest.raises(InputError, match="does not exist"):
        to_model_spec(VariantSpec("mine", model="/no/such/model.gguf"))
