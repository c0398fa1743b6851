"""Print a benchmark's Markdown table and append it to a results file."""

from __future__ import annotations


def emit(table: str, out: str | None) -> None:
    print(table)
    if out:
        with open(out, "a") as f:
            f.write(table + "\n")
