"""Web pages and Word files as documents: their text in Markdown, their titles, streamed as loaded whole."""

from __future__ import annotations

import io
import json
from itertools import islice

import pytest

from engine.errors import InputError
from engine.rag.chunking import chunk_documents
from engine.rag.documents import load_documents, parse_upload
from engine.rag.formats import read_docx, read_html
from engine.rag.sources import read_documents, scan_path


@pytest.fixture(scope="module")
def passages(shared_data) -> list[dict]:
    lines = islice((shared_data / "wiki-passages.jsonl").open(encoding="utf-8"), 3)
    return [json.loads(line) for line in lines]


def web_page(p: dict) -> bytes:
    return f"""<!doctype html><html><head><title>{p["title"]} - Wiki</title><style>p {{color: red}}</style>
<script>var tracking = "do not index";</script></head><body>
<nav><a href="/">Home</a> | <a href="/about">About this site</a></nav>
<h1>{p["title"]}</h1><p>{p["text"]}</p>
<h2>Facts</h2><ul><li>First   fact</li><li>Second fact</li></ul>
<table><tr><th>Year</th><th>Event</th></tr><tr><td>1901</td><td>Founded</td></tr></table>
<footer>Copyright notice</footer></body></html>""".encode()


def word_file(p: dict, title_property: str = "") -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title_property
    document.add_heading(p["title"], level=1)
    document.add_paragraph(p["text"])
    document.add_heading("Facts", level=2)
    document.add_paragraph("First fact", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("Year", "Event"), ("1901", "Founded")), strict=True):
        row.cells[0].text, row.cells[1].text = cells
    document.add_paragraph("After the table.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_a_web_page_is_its_visible_text_in_markdown(passages) -> None:
    p = passages[0]
    found = read_html(web_page(p), "page.html")
    assert found.title == f"{p['title']} - Wiki" and found.metadata == {"format": "html"}
    assert found.text.startswith(f"# {p['title']}\n\n{' '.join(p['text'].split())[:40]}")
    assert "## Facts\n\n- First fact\n- Second fact" in found.text
    assert "| Year | Event |\n| 1901 | Founded |" in found.text
    for hidden in ("tracking", "color: red", "About this site", "Copyright"):
        assert hidden not in found.text
    untitled = read_html(web_page(p).replace(b"<title>", b"<x>").replace(b"</title>", b"</x>"), "page.html")
    assert untitled.title == p["title"]  # no <title>: the first <h1>
    with pytest.raises(InputError, match="no visible text"):
        read_html(b"<html><script>only()</script></html>", "empty.html")


def test_a_word_file_keeps_its_headings_lists_and_tables(passages) -> None:
    p = passages[1]
    found = read_docx(word_file(p), "notes.docx")
    assert found.title == p["title"] and found.metadata == {"format": "docx"}
    assert found.text.startswith(f"# {p['title']}\n\n{' '.join(p['text'].split())[:40]}")
    assert "## Facts\n\n- First fact\n| Year | Event |\n| 1901 | Founded |\nAfter the table." in found.text
    assert read_docx(word_file(p, "Set in the properties"), "notes.docx").title == "Set in the properties"
    with pytest.raises(InputError, match="not a readable Word"):
        read_docx(b"PK\x03\x04 not really a zip", "broken.docx")


def test_a_folder_of_web_pages_and_word_files_streams_as_it_loads(tmp_path, passages) -> None:
    (tmp_path / "a.html").write_bytes(web_page(passages[0]))
    (tmp_path / "b.docx").write_bytes(word_file(passages[1]))
    (tmp_path / "c.htm").write_bytes(web_page(passages[2]))
    whole = load_documents(tmp_path)
    streamed = list(read_documents(scan_path(tmp_path)))
    assert [(d.id, d.title, d.metadata["format"]) for d in streamed] == [
        ("a.html", f"{passages[0]['title']} - Wiki", "html"), ("b.docx", passages[1]["title"], "docx"),
        ("c.htm", f"{passages[2]['title']} - Wiki", "html"),
    ]  # fmt: skip
    assert [(d.id, d.title, d.metadata) for d in whole] == [(d.id, d.title, d.metadata) for d in streamed]
    assert chunk_documents(streamed) == chunk_documents(whole)
    assert parse_upload("b.docx", word_file(passages[1]))[0].text == whole[1].text  # an upload reads the same
    (tmp_path / "d.docx").write_bytes(b"not a word file")
    with pytest.raises(InputError, match="d.docx is not a readable Word"):
        scan_path(tmp_path)
