"""Names users give to what the Studio stores in folders (adapters, datasets): one rule for all.

A name becomes a folder name, so the rule is also the guard against path traversal (``../x``).
"""

from __future__ import annotations

import re

from engine.errors import InputError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_safe_name(name: str, kind: str) -> str:
    """The stripped ``name``, or an InputError naming the ``kind`` of thing it names."""
    stripped = (name or "").strip()
    if not SAFE_NAME.fullmatch(stripped) or ".." in stripped:
        raise InputError(
            f"Invalid {kind} name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'."
        )
    return stripped
