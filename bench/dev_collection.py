"""A development collection made from the shared data: documents, and questions about them written by people.

    .venv/bin/python bench/dev_collection.py --documents 200 --out /tmp/dev-collection

The documents are Wikipedia paragraphs (one Markdown file each, its title as the heading) holding
the gold paragraphs of HotpotQA questions of the fixed test split, taken in the split's order (after
the first ``--skip``) until there are ``--documents`` of them; the questions are those HotpotQA
questions (written by people, never generated) whose gold paragraphs are all in the folder. No
question of HotpotQA's training or validation split is used, so an adapter trained on HotpotQA has
not seen them. Writes:

- ``<out>/documents/*.md``: the folder a user would point the Studio at;
- ``<out>/questions.jsonl``: the questions, answers, gold passages and their files (document ids), to
  import with ``python -m engine data import <out>/questions.jsonl --dataset <name>``.

``--source dolly`` makes another kind of collection: the contexts of Dolly's ``closed_qa`` records
(146 passages, each its own document, titled by its subject) with the records' instructions as the
questions and their responses (mostly a sentence or more, written by people) as the answers. No
training recipe uses ``closed_qa`` (it is the forgetting check of ``bench/forgetting.py``, kept
apart), so neither adapter has seen these questions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def file_name(title: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "document"
    name, n = f"{stem}.md", 2
    while name in taken:
        name, n = f"{stem}-{n}.md", n + 1
    taken.add(name)
    return name


def build(out: Path, documents: int, shared: Path, settings, skip: int = 0) -> dict:
    from engine.evaluation.splits import split_items

    items = split_items(shared / "hotpotqa-dev.jsonl", settings, "test")[skip:]
    files: dict[str, str] = {}  # title -> file name
    texts: dict[str, str] = {}
    questions, taken = [], set()
    for item in items:
        gold = [(t, text) for t, text in item.paragraphs if t in item.supporting_titles]
        new = [t for t, _ in gold if t not in files]
        if len(files) + len(new) > documents:
            break
        for title, text in gold:
            if title not in files:
                files[title], texts[title] = file_name(title, taken), text
        questions.append({
            "id": f"hotpotqa-{item.id}", "question": item.question.strip(), "answer": item.answer,
            "contexts": [{"title": t, "text": text, "doc_id": files[t]} for t, text in gold],
            "doc_ids": [files[t] for t, _ in gold],
            "metadata": {"source": "hotpotqa (written by people)", "category": item.type, "hotpotqa_id": item.id},
        })  # fmt: skip
    write(out, {name: (title, texts[title]) for title, name in files.items()}, questions)
    return {"documents": len(files), "questions": len(questions), "folder": str(out / "documents")}


SUBJECT = re.compile(r"^(?P<subject>[^.!?]{2,80}?)\s+(?:is|was|are|were|has|had)\b")


def dolly_title(context: str) -> str:
    """A document title from a passage's first sentence: its subject ("Colnago is ..."), else its first words."""
    first = re.sub(r"\s*\([^)]*\)", "", context.strip().split("\n")[0])  # "Annapolis (/əˈnæpəlɪs/) is ..."
    found = SUBJECT.match(first)
    title = found.group("subject") if found else " ".join(first.split()[:6])
    return re.sub(r"^(?:A|An|The) ", "", title).strip(" ,;:") or "Document"


def build_dolly(out: Path, documents: int, shared: Path) -> dict:
    files: dict[str, str] = {}  # context -> file name
    titles: dict[str, str] = {}
    questions, taken = [], set()
    for n, line in enumerate((shared / "dolly-15k-mini.jsonl").open(encoding="utf-8")):
        row = json.loads(line)
        context = str(row.get("context") or "").strip()
        if row.get("category") != "closed_qa" or not context:
            continue
        if context not in files:
            if len(files) == documents:
                break
            titles[context] = dolly_title(context)
            files[context] = file_name(titles[context], taken)
        doc = files[context]
        questions.append({
            "id": f"dolly-{n}", "question": row["instruction"].strip(), "answer": row["response"].strip(),
            "contexts": [{"title": titles[context], "text": context, "doc_id": doc}], "doc_ids": [doc],
            "metadata": {"source": "dolly closed_qa (written by people)", "category": "closed_qa"},
        })  # fmt: skip
    write(out, {files[c]: (titles[c], c) for c in files}, questions)
    return {"documents": len(files), "questions": len(questions), "folder": str(out / "documents")}


def write(out: Path, documents: dict[str, tuple[str, str]], questions: list[dict]) -> None:
    """The documents (file name -> title and text) as Markdown files, and the questions as JSONL."""
    folder = out / "documents"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (title, text) in documents.items():
        (folder / name).write_text(f"# {title}\n\n{text}\n", encoding="utf-8")
    with (out / "questions.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in questions)


def main() -> int:
    from engine.settings import Settings, load_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--documents", type=int, default=200)
    p.add_argument("--source", choices=["hotpotqa", "dolly"], default="hotpotqa")
    p.add_argument(
        "--skip",
        type=int,
        default=0,
        help="hotpotqa: start after this many test questions (another collection, other questions)",
    )
    p.add_argument("--out", required=True, help="a new folder")
    a = p.parse_args()
    out = Path(a.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty: choose a new folder", file=sys.stderr)
        return 2
    shared = load_settings().shared_data_dir
    if a.source == "dolly":
        print(json.dumps(build_dolly(out, a.documents, shared)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:  # the fixed split is made in a scratch data dir, not the user's
        found = build(out, a.documents, shared, Settings(data_dir=Path(tmp), shared_data_dir=shared), a.skip)
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
