"""A tiny document model for reports: headings, paragraphs, tables and plotly figures, rendered as Markdown
and as one self-contained offline HTML page."""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field


@dataclass
class Document:
    """Blocks (heading, paragraph, list, table, figure) in order; rendered by ``markdown`` and ``html``."""

    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        self.blocks.append(("ul", items))

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", headers, rows))

    def figure(self, fig) -> None:
        self.blocks.append(("figure", fig))

    def markdown(self) -> str:
        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "p":
                out.append(block[1])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                headers, rows = block[1], block[2]
                cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
                lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
                lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
                out.append("\n".join(lines))
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        parts, plotly_included = [], False
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                parts.append(f"<h{block[1]}>{inline_text(block[2])}</h{block[1]}>")
            elif kind == "p":
                parts.append(f"<p>{inline_text(block[1])}</p>")
            elif kind == "ul":
                parts.append("<ul>" + "".join(f"<li>{inline_text(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{inline_text(h)}</th>" for h in block[1])
                cells = ("".join(f"<td>{inline_text(v)}</td>" for v in row) for row in block[2])
                body = "".join(f"<tr>{row}</tr>" for row in cells)
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "figure":
                # offline: plotly.js is embedded once, in the first figure; later figures reuse it
                div = block[1].to_html(
                    full_html=False,
                    include_plotlyjs=not plotly_included,
                    config={"displaylogo": False, "topojsonURL": "topojson/"},
                )
                if not plotly_included:
                    # plotly.js's default map-data URL (never fetched: no map is drawn) would be the page's only
                    # reference to a network address; point it at a local folder instead
                    div = div.replace("https://cdn.plot.ly/un/", "topojson/")
                plotly_included = True
                parts.append(f'<div class="figure">{div}</div>')
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
            "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}"
            ".figure{margin:1em 0}"
        )
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html_lib.escape(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
        )


def inline_text(text) -> str:
    """Escaped HTML of a Markdown cell or paragraph, with **bold** and `code` kept."""
    escaped = html_lib.escape(str(text))
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
