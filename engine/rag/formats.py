"""Readers of the rich document formats: PDF, HTML and Word (.docx), each to text and a title.

HTML and Word keep their structure as Markdown (headings as ``#``, list items as ``-``, table rows
as ``| a | b |``), the form the chunker and QA generation already read: a heading starts a
section, and table rows are never taken as answers.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import docx
from bs4 import BeautifulSoup
from docx.table import Table
from docx.text.paragraph import Paragraph
from pypdf import PdfReader

from engine.errors import InputError

BLANK_RUNS = re.compile(r"\n{3,}")
HTML_DROPPED = ("script", "style", "noscript", "template", "svg", "head", "nav", "footer", "form", "button")
HTML_BLOCKS = tuple("p div section article main header blockquote pre dd dt figcaption tr br hr table ul ol".split())


@dataclass(frozen=True)
class Parsed:
    text: str
    title: str  # "" where the file names none
    metadata: dict


def pdf_reader(handle, name: str):
    """A pypdf reader of an open PDF and its page count; a damaged or locked file is an InputError."""
    try:
        reader = PdfReader(handle)
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(f"{name} is an encrypted PDF; remove the password and try again.")
        return reader, len(reader.pages)
    except InputError:
        raise
    except Exception as e:  # pypdf raises many kinds of errors on a damaged file
        raise InputError(f"{name} is not a readable PDF ({e}).") from None


def pdf_pages(reader, name: str) -> Iterator[str]:
    """The stripped texts of a PDF's pages, blank pages left out."""
    for page in reader.pages:
        try:
            text = (page.extract_text() or "").strip()
        except Exception as e:  # noqa: BLE001 - a damaged page: pypdf raises many kinds
            raise InputError(f"{name} is not a readable PDF ({e}).") from None
        if text:
            yield text


def read_pdf(data: bytes, name: str) -> Parsed:
    if not data.strip():
        raise InputError(f"{name} is empty.")
    reader, pages = pdf_reader(io.BytesIO(data), name)
    text = "\n\n".join(pdf_pages(reader, name))
    if not text.strip():
        raise InputError(f"{name} has no extractable text (it may be a scanned image; run OCR on it first).")
    return Parsed(text, "", {"format": "pdf", "pages": pages})


def read_html(data: bytes, name: str) -> Parsed:
    """The visible text of a web page (scripts, styles, navigation and forms left out), its headings, list
    items and table rows in Markdown; the title is the page's ``<title>``, else its first ``<h1>``."""
    soup = BeautifulSoup(data, "html.parser")  # the standard library's parser: lenient, nothing to install
    named = soup.title or soup.find("h1")
    title = " ".join(named.get_text(" ").split()) if named else ""
    for tag in soup(HTML_DROPPED):
        tag.decompose()
    for level in range(1, 7):
        for tag in soup(f"h{level}"):
            tag.replace_with(f"\n\n{'#' * level} {' '.join(tag.get_text(' ').split())}\n\n")
    for tag in soup("li"):
        tag.replace_with(f"\n- {' '.join(tag.get_text(' ').split())}\n")
    for tag in soup("tr"):
        cells = [" ".join(c.get_text(" ").split()) for c in tag(["td", "th"])]
        tag.replace_with(f"\n| {' | '.join(cells)} |\n")
    for tag in soup(HTML_BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    text = BLANK_RUNS.sub("\n\n", "\n".join(tight(" ".join(line.split()) for line in soup.get_text().splitlines())))
    text = text.strip()
    if not text:
        raise InputError(f"{name} has no visible text.")
    return Parsed(text, title, {"format": "html"})


def tight(lines) -> list[str]:
    """``lines`` without the blank lines between two list items or two table rows (the markup's own line
    breaks between the tags)."""
    out: list[str] = []
    pending = False
    for line in lines:
        if not line:
            pending = True
            continue
        same = out and line[:2] in ("- ", "| ") and out[-1][:2] == line[:2]
        if pending and out and not same:
            out.append("")
        out.append(line)
        pending = False
    return out


def read_docx(data: bytes, name: str) -> Parsed:
    """The paragraphs and tables of a Word file in document order: headings (and the Title style) as
    Markdown headings, list paragraphs as items, table rows as ``| a | b |``; the title is the file's
    title property, else its first Title or level-1 heading."""
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as e:  # a zip that is not a Word file, a damaged one: python-docx raises several kinds
        raise InputError(f"{name} is not a readable Word (.docx) file ({type(e).__name__}).") from None
    blocks, first = [], ""
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            blocks += ["| " + " | ".join(" ".join(c.text.split()) for c in row.cells) + " |" for row in block.rows]
            continue
        if not isinstance(block, Paragraph) or not (text := " ".join(block.text.split())):
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = 1 if style == "Title" else int(m.group(1)) if (m := re.match(r"Heading (\d)", style)) else 0
        if level:
            first = first or (text if level == 1 else "")
            blocks.append(f"\n{'#' * level} {text}\n")
        else:
            blocks.append(f"- {text}" if "List" in style else f"{text}\n")
    text = BLANK_RUNS.sub("\n\n", "\n".join(blocks)).strip()
    if not text:
        raise InputError(f"{name} has no text.")
    title = " ".join((document.core_properties.title or "").split()) or first
    return Parsed(text, title, {"format": "docx"})


READERS = {".pdf": read_pdf, ".html": read_html, ".htm": read_html, ".docx": read_docx}
