"""The model catalog: bundled entries, the user's YAML file, presets and clear errors."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.models.catalog import (
    BUNDLED,
    DEFAULT_PRESETS,
    catalog_path,
    find_entry,
    load_catalog,
    parse_catalog,
    save_user_catalog,
)
from engine.models.spec import DEFAULT_MODEL

USER = """
- name: qwen2.5-0.5b-instruct
  source: /models/qwen
  params_m: 494
  presets:
    cpu:
      speed: {quantization: 4bit, batch_size: 2}
- name: my-gguf
  source: /models/tiny
  gguf_file: tiny.Q8_0.gguf
"""


def test_bundled_default_entry_loads_the_bundled_model(settings):
    first = load_catalog(settings)[0]
    assert first.bundled and first.name == DEFAULT_MODEL.name
    spec = first.model_spec("cpu", "balanced")
    assert (spec.source, spec.gguf_file, spec.dtype) == (DEFAULT_MODEL.source, DEFAULT_MODEL.gguf_file, "auto")
    assert first.model_spec("cpu", "speed").quantization == "int4-weight"
    assert first.model_spec("cpu", "quality").dtype == "float32"
    assert first.preset("mps", "speed").quantization == "none"  # bitsandbytes has no mps backend


def test_user_entries_replace_bundled_ones_and_fill_missing_presets(settings):
    save_user_catalog(settings, USER)
    entries = load_catalog(settings)
    names = [e.name for e in entries]
    assert names.count("qwen2.5-0.5b-instruct") == 1 and names[-2:] == ["qwen2.5-0.5b-instruct", "my-gguf"]
    qwen = find_entry(entries, "qwen2.5-0.5b-instruct")
    assert qwen.source == "/models/qwen" and not qwen.bundled
    assert qwen.preset("cpu", "speed").quantization == "4bit" and qwen.preset("cpu", "speed").batch_size == 2
    assert qwen.preset("cpu", "speed").max_new_tokens == DEFAULT_PRESETS["cpu"]["speed"].max_new_tokens
    assert qwen.preset("cuda", "quality") == DEFAULT_PRESETS["cuda"]["quality"]
    assert find_entry(entries, "my-gguf").model_spec().gguf_file == "tiny.Q8_0.gguf"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x", "must be a list"),
        ("- [1, 2]", "entry 1: an entry is a mapping"),
        ("- {name: x}", "entry 1: name and source are required"),
        ("- {name: x, source: y, colour: red}", "unknown field"),
        ("- {name: x, source: y, params_m: -3}", "params_m must be a positive number"),
        ("- {name: x, source: y, presets: {tpu: {}}}", "presets.tpu"),
        ("- {name: x, source: y, presets: {cpu: {fastest: {}}}}", "presets.cpu.fastest"),
        ("- {name: x, source: y, presets: {cpu: {speed: {dtype: int3}}}}", "entry 1 (x): presets.cpu.speed: dtype"),
        ("- {name: x, source: y, presets: {cpu: {speed: {batch_size: 0}}}}", "batch_size"),
        ("- {name: x, source: y, presets: {cpu: {speed: {threads: 4}}}}", "unknown setting"),
        ("- {name: x, source: y}\n- {name: x, source: z}", "more than once"),
        ("- {name: x, source: [unclosed", "not valid YAML"),
    ],
)
def test_bad_entries_get_a_clear_message(text, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_catalog(text)


def test_a_bad_text_is_not_saved_and_the_old_catalog_stays(settings):
    save_user_catalog(settings, USER)
    with pytest.raises(InputError):
        save_user_catalog(settings, "- {name: broken}")
    assert catalog_path(settings).read_text() == USER
    assert parse_catalog("") == [] and save_user_catalog(settings, "") == []
    assert [e.name for e in load_catalog(settings)] == [e.name for e in BUNDLED]


def test_unknown_names_and_kinds_are_errors():
    with pytest.raises(InputError, match="No catalog entry 'nope'"):
        find_entry(list(BUNDLED), "nope")
    with pytest.raises(InputError, match="device kind"):
        BUNDLED[0].preset("tpu")
    with pytest.raises(InputError, match="preset"):
        BUNDLED[0].preset("cpu", "fastest")
