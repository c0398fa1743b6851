"""The fixed HotpotQA split (600 train / 100 validation / 300 test): the evaluation protocol.

Made once from the data file, stored in the data directory with the file's sha256, and never
recomputed; no question is in two splits.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from engine.errors import InputError, check_choice
from engine.evaluation.hotpotqa import QAItem, load_hotpotqa
from engine.settings import Settings
from engine.write_policy import write_atomic

SPLIT_SIZES = {"train": 600, "validation": 100, "test": 300}
SPLIT_SEED = 13
SPLIT_FILE = "hotpotqa-dev.json"


def hotpotqa_split(path: str | Path, settings: Settings) -> dict[str, list[str]]:
    """Question ids per split (train, validation, test), made once and then read from the data dir.

    The split is the evaluation protocol: once stored it is never recomputed, and using it with a
    different HotpotQA file is an InputError.
    """
    path = Path(path)
    target = settings.data_dir / "splits" / SPLIT_FILE
    if not path.is_file():
        raise InputError(f"{path} does not exist." if not path.exists() else f"{path} is not a file.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if target.is_file():
        try:
            stored = json.loads(target.read_text(encoding="utf-8"))
            splits = stored["splits"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(f"The HotpotQA split {target} is not readable ({e}): delete it to make it again.") from e
        if stored.get("sha256") != digest:
            raise InputError(
                f"The HotpotQA split {target} was made from a different file ({stored.get('source')}, sha256 "
                f"{str(stored.get('sha256'))[:12]}) than {path} (sha256 {digest[:12]}): use that file, or "
                "delete the split to make a new one (earlier results are then not comparable)."
            )
        return splits
    ids = sorted(item.id for item in load_hotpotqa(path))
    need = sum(SPLIT_SIZES.values())
    if len(ids) < need:
        raise InputError(f"{path} has {len(ids)} questions; the HotpotQA split needs at least {need}.")
    if len(set(ids)) != len(ids):
        raise InputError(f"{path} has repeated question ids: the split needs unique ids.")
    random.Random(SPLIT_SEED).shuffle(ids)
    splits, start = {}, 0
    for name, size in SPLIT_SIZES.items():
        splits[name], start = ids[start : start + size], start + size
    write_json(target, {"source": path.name, "sha256": digest, "sizes": SPLIT_SIZES, "splits": splits})
    return splits


def write_json(target: Path, data: dict) -> None:
    # Two processes (the app and a job) may make the split at once: each writes whole files.
    write_atomic(target, json.dumps(data, indent=1))


def split_items(path: str | Path, settings: Settings, split: str) -> list[QAItem]:
    """The questions of one split of the HotpotQA file, in split order."""
    check_choice(split, SPLIT_SIZES, "split")
    ids = hotpotqa_split(path, settings)[split]
    by_id = {item.id: item for item in load_hotpotqa(path)}
    return [by_id[i] for i in ids]
