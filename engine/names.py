"""Names users give to what the Studio stores (knowledge bases, datasets, adapters, experiments,
sessions, variants): one rule for all, one that every backend accepts.

A name becomes a folder name, a Chroma collection name and part of MLflow run names, so the rule
is the intersection of theirs: Chroma wants 3-512 characters of ``[A-Za-z0-9._-]`` starting and
ending with a letter or digit, no ``..`` and no IPv4 address; a folder name must stay well under
255 bytes. The rule is also the guard against path traversal (``../x``).
"""

from __future__ import annotations

import re

from engine.errors import InputError

MIN_LENGTH, MAX_LENGTH = 3, 64
SAFE_NAME = re.compile(rf"^[A-Za-z0-9](?:[A-Za-z0-9._-]{{{MIN_LENGTH - 2},{MAX_LENGTH - 2}}})[A-Za-z0-9]$")
IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
RULE = (
    f"use {MIN_LENGTH} to {MAX_LENGTH} letters, digits, '.', '_' or '-', starting and ending with a letter or "
    "digit, without '..', and not an IPv4 address like 192.168.1.1"
)


def is_safe_name(name: str) -> bool:
    """Whether ``name`` (as given, not stripped) follows the rule."""
    return bool(SAFE_NAME.fullmatch(name or "")) and ".." not in name and not IPV4.fullmatch(name)


def check_safe_name(name: str, kind: str) -> str:
    """The stripped ``name``, or an InputError naming the ``kind`` of thing it names."""
    stripped = (name or "").strip()
    if not is_safe_name(stripped):
        raise InputError(f"Invalid {kind} name {name!r}: {RULE}.")
    return stripped
