"""Loading documents: real shared data, every supported format, and every user-facing error."""

from __future__ import annotations

import io
import json
import re
from itertools import islice
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.rag.documents import (
    SUPPORTED_SUFFIXES,
    Document,
    load_documents,
    load_jsonl_records,
    markdown_title,
    parse_upload,
)
from engine.settings import load_settings

WIKI = load_settings().shared_data_dir / "wiki-passages.jsonl"


def _wiki_head(n: int) -> list[str]:
    if not WIKI.is_file():
        pytest.skip(f"shared data not found at {WIKI} (set STUDIO_SHARED_DATA)")
    with WIKI.open(encoding="utf-8") as f:
        return list(islice(f, n))


def text_pdf(text: str) -> bytes:
    """A minimal valid one-page PDF that shows ``text`` in Helvetica."""
    content = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- real data


def test_first_200_wiki_passages_load_with_ids_and_titles(tmp_path: Path) -> None:
    lines = _wiki_head(200)
    path = tmp_path / "wiki.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    expected = [json.loads(line) for line in lines]

    docs = load_documents(path)

    assert len(docs) == 200
    assert [d.id for d in docs] == [r["id"] for r in expected]
    assert [d.title for d in docs] == [r["title"] for r in expected]
    assert [d.text for d in docs] == [r["text"].strip() for r in expected]
    assert docs[0].id == "hpqa-wiki-00000"
    assert all(d.source == "wiki.jsonl" and d.text for d in docs)
    assert all(d.metadata == {} for d in docs)  # id, title, text are not metadata


def test_upload_of_real_jsonl_matches_file_load(tmp_path: Path) -> None:
    data = "".join(_wiki_head(50)).encode()
    (tmp_path / "w.jsonl").write_bytes(data)
    assert parse_upload("w.jsonl", data) == load_documents(tmp_path / "w.jsonl")


# --------------------------------------------------------------------------- JSONL


def test_jsonl_alternative_text_fields_metadata_and_hash_ids(tmp_path: Path) -> None:
    records = [
        {"id": 7, "title": "Seven", "content": "Body seven.", "year": 2020, "tags": ["x"], "ok": True},
        {"body": "No title and no id here, so both are derived from the text."},
    ]
    lines = [json.dumps(r) for r in records] + ["", "   "]  # blank lines are skipped
    (tmp_path / "d.jsonl").write_text("\n".join(lines), encoding="utf-8")

    first, second = load_documents(tmp_path / "d.jsonl")

    assert (first.id, first.title, first.text) == ("7", "Seven", "Body seven.")
    assert first.metadata == {"year": 2020, "ok": True}  # lists are not scalars
    assert second.title.startswith("No title and no id")
    assert re.fullmatch(r"[0-9a-f]{32}", second.id)
    assert load_documents(tmp_path / "d.jsonl")[1].id == second.id  # stable


def test_malformed_jsonl_reports_exactly_the_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "text": "fine"}),
        '{"id": "b", "text": "unterminated',
        json.dumps({"id": "c", "text": "fine too"}),
        "",
        json.dumps({"id": "e", "title": "no text"}),
        json.dumps({"id": "f", "text": "last one is fine"}),
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(InputError) as info:
        load_documents(path)

    message = str(info.value)
    assert message.startswith("data.jsonl: 2 malformed lines: ")
    assert re.findall(r"line (\d+) \(", message) == ["2", "5"]
    assert "line 2 (invalid JSON" in message
    assert 'line 5 (no "text" or "content" or "body" field)' in message


def test_malformed_jsonl_kinds_and_truncated_list() -> None:
    lines = ["[1, 2]", '{"text": "   "}', '{"text": 3}'] + ["nope"] * 12
    with pytest.raises(InputError) as info:
        load_jsonl_records(lines, name="x.jsonl", check=lambda r: None if isinstance(r["text"], str) else "bad")
    message = str(info.value)
    assert message.startswith("x.jsonl: 15 malformed lines: line 1 (not a JSON object), ")
    assert 'line 2 (empty "text" field)' in message
    assert "line 3 (bad)" in message
    assert re.findall(r"line (\d+) \(", message) == [str(n) for n in range(1, 11)]
    assert message.endswith(", and 5 more.")


def test_load_jsonl_records_with_other_required_fields(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "Q?", "answer": "A"}\n{"question": "Q2?"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r'qa.jsonl: 1 malformed line: line 2 \(no "answer" field\)'):
        load_jsonl_records(path, required=("question", "answer"))
    path.write_text('{"question": "Q?", "answer": "A"}\n', encoding="utf-8")
    assert load_jsonl_records(path, required=("question", "answer")) == [{"question": "Q?", "answer": "A"}]


# --------------------------------------------------------------------------- text, Markdown, folders


def test_markdown_title_extraction(tmp_path: Path) -> None:
    md = "Intro line.\n\n```\n# not a heading\n```\n\n## Sub\n\n# The Real Title #\n\nBody.\n"
    (tmp_path / "notes.md").write_text(md, encoding="utf-8")
    (tmp_path / "plain.markdown").write_text("## Only a subheading\n\ntext\n", encoding="utf-8")

    [doc] = load_documents(tmp_path / "notes.md")
    assert doc.title == "The Real Title"
    assert doc.text == md.strip()
    assert load_documents(tmp_path / "plain.markdown")[0].title == "plain"
    assert markdown_title("#NoSpace\n# Yes") == "Yes"


def test_folder_is_recursive_sorted_and_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("Bee text.\r\nSecond line.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("# Aye\n\ntext", encoding="utf-8")
    (tmp_path / "A.TXT").write_text("upper-case suffix", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("git", encoding="utf-8")
    (tmp_path / "table.csv").write_text("a,b", encoding="utf-8")

    docs = load_documents(tmp_path)

    assert [d.id for d in docs] == ["A.TXT", "b.txt", "sub/a.md"]
    assert [d.title for d in docs] == ["A", "b", "Aye"]
    assert docs[1].text == "Bee text.\nSecond line."
    assert docs[2].source == "sub/a.md"


def test_upload_text_and_markdown() -> None:
    [doc] = parse_upload("some/dir/readme.md", b"# Hello\n\nWorld")
    assert (doc.id, doc.title, doc.source) == ("readme.md", "Hello", "readme.md")
    assert isinstance(doc, Document)
    assert parse_upload("bom.txt", "\ufeffwith BOM".encode())[0].text == "with BOM"


# --------------------------------------------------------------------------- PDF


def test_pdf_with_text(tmp_path: Path) -> None:
    (tmp_path / "paper.pdf").write_bytes(text_pdf("Hello PDF world"))
    [doc] = load_documents(tmp_path / "paper.pdf")
    assert "Hello PDF world" in doc.text
    assert (doc.id, doc.title, doc.metadata["pages"]) == ("paper.pdf", "paper", 1)
    assert parse_upload("paper.pdf", text_pdf("Hello PDF world")) == [doc]


def test_pdf_without_text_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "scan.pdf").write_bytes(blank_pdf())
    with pytest.raises(InputError, match="scan.pdf has no extractable text"):
        load_documents(tmp_path / "scan.pdf")


def test_broken_pdf_is_an_input_error() -> None:
    with pytest.raises(InputError, match="broken.pdf is not a readable PDF"):
        parse_upload("broken.pdf", b"this is not a pdf at all")


# --------------------------------------------------------------------------- errors


def test_non_utf8_is_an_input_error_with_byte_position(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"latin\.txt is not UTF-8 text \(byte 4\)"):
        parse_upload("latin.txt", "café".encode("latin-1"))
    (tmp_path / "l.jsonl").write_bytes(b'{"text": "\xff"}\n')
    with pytest.raises(InputError, match=r"l\.jsonl is not UTF-8 text \(byte 11\)"):
        load_documents(tmp_path / "l.jsonl")


@pytest.mark.parametrize("name", ["empty.txt", "empty.jsonl", "empty.md", "empty.pdf"])
def test_empty_upload_is_an_input_error(name: str) -> None:
    with pytest.raises(InputError, match=f"{re.escape(name)} is empty"):
        parse_upload(name, b"")


def test_blank_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "blank.jsonl").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="blank.jsonl is empty"):
        load_documents(tmp_path / "blank.jsonl")


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_documents(tmp_path / "nowhere")


def test_unsupported_suffix_lists_supported_ones(tmp_path: Path) -> None:
    (tmp_path / "sheet.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_documents(tmp_path / "sheet.csv")
    assert "unsupported file type .csv" in str(info.value)
    assert all(s in str(info.value) for s in SUPPORTED_SUFFIXES)
    with pytest.raises(InputError, match="unsupported"):
        parse_upload("slides.pptx", b"PK\x03\x04")


def test_folder_without_supported_files_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("a", encoding="utf-8")
    with pytest.raises(InputError, match="contains no supported files"):
        load_documents(tmp_path)


def test_bad_file_in_folder_is_named_by_relative_path(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.jsonl").write_text('{"text": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"^sub/bad\.jsonl: 1 malformed line: line 2 \(invalid JSON"):
        load_documents(tmp_path)
