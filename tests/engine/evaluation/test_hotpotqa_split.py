"""The fixed HotpotQA split: sizes, storage, refusal of another file."""

from __future__ import annotations

import json

import pytest

from engine.errors import InputError
from engine.evaluation.hotpotqa import load_hotpotqa
from engine.evaluation.splits import SPLIT_SIZES, hotpotqa_split, split_items


@pytest.fixture(scope="module")
def hotpot_path(shared_data):
    return shared_data / "hotpotqa-dev.jsonl"


def test_split_sizes_disjoint_and_stored(hotpot_path, settings):
    splits = hotpotqa_split(hotpot_path, settings)
    assert {k: len(v) for k, v in splits.items()} == SPLIT_SIZES
    all_ids = [i for ids in splits.values() for i in ids]
    assert len(set(all_ids)) == 1000
    assert set(all_ids) <= {item.id for item in load_hotpotqa(hotpot_path)}
    stored = json.loads((settings.data_dir / "splits" / "hotpotqa-dev.json").read_text())
    assert stored["splits"] == splits and stored["sizes"] == SPLIT_SIZES and len(stored["sha256"]) == 64
    assert hotpotqa_split(hotpot_path, settings) == splits
    assert not list((settings.data_dir / "splits").glob("*.tmp"))


def test_split_is_read_back_not_recomputed(hotpot_path, settings):
    target = settings.data_dir / "splits" / "hotpotqa-dev.json"
    splits = hotpotqa_split(hotpot_path, settings)
    stored = json.loads(target.read_text())
    stored["splits"]["test"] = stored["splits"]["test"][::-1]
    target.write_text(json.dumps(stored))
    assert hotpotqa_split(hotpot_path, settings)["test"] == splits["test"][::-1]


def test_split_is_the_same_in_another_data_dir(hotpot_path, settings, tmp_path_factory):
    from engine.settings import Settings

    other = Settings(data_dir=tmp_path_factory.mktemp("other"), shared_data_dir=settings.shared_data_dir)
    assert hotpotqa_split(hotpot_path, settings) == hotpotqa_split(hotpot_path, other)


def test_split_refuses_a_different_file(hotpot_path, settings, tmp_path):
    hotpotqa_split(hotpot_path, settings)
    lines = hotpot_path.read_text().splitlines()
    first = json.loads(lines[0])
    first["answer"] = "something else"
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(InputError, match="different file") as e:
        hotpotqa_split(changed, settings)
    assert "hotpotqa-dev.jsonl" in str(e.value) and "changed.jsonl" in str(e.value)


def test_split_needs_1000_questions(hotpot_path, settings, tmp_path):
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(hotpot_path.read_text().splitlines()[:999]) + "\n")
    with pytest.raises(InputError, match="999 questions"):
        hotpotqa_split(short, settings)
    assert not (settings.data_dir / "splits" / "hotpotqa-dev.json").exists()


def test_split_items_in_split_order(hotpot_path, settings):
    validation = split_items(hotpot_path, settings, "validation")
    assert [item.id for item in validation] == hotpotqa_split(hotpot_path, settings)["validation"]
    assert all(item.question and item.answer for item in validation)
    with pytest.raises(InputError, match="Unknown split"):
        split_items(hotpot_path, settings, "dev")
