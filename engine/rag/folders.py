"""Which files of a folder the Studio reads, and what it says about the ones it cannot use.

A folder is read recursively: every file with a supported suffix, hidden files and folders left
out, sorted by relative path. A link is followed only where it leads to a file inside the folder;
a link that leaves the folder (or leads nowhere) is skipped and listed, so a link to
``/etc/passwd`` is never read. Links to folders are not descended: the folder's own files are
reached where they are.

A bad file is named with its problem. The caller chooses, as dataset import does, to abort on
any bad file (``on_error="abort"``, every bad file listed) or to go on without them (``"skip"``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError

SUPPORTED_SUFFIXES = (".jsonl", ".txt", ".md", ".markdown", ".pdf", ".html", ".htm", ".docx")
ON_ERROR = ("abort", "skip")
SKIP_HINT = "skip bad files (--skip-bad, or the 'Skip bad files' box)"


@dataclass(frozen=True)
class FolderListing:
    """The files to read under ``root`` and what was left out."""

    root: Path  # the folder, links resolved
    files: tuple[tuple[str, Path], ...]  # (path relative to the folder, the file)
    links: tuple[str, ...] = ()  # links skipped, each with where it leads and why
    problems: tuple[str, ...] = ()  # files that cannot be read at all (not regular files)


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path``, its links resolved, lies inside the (resolved) folder ``root``."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(root)
    except (OSError, ValueError):
        return False


def _target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def list_folder(folder: str | os.PathLike) -> FolderListing:
    """The supported files under ``folder`` (see the module docstring); raises if there are none at all."""
    root = Path(os.path.realpath(Path(folder).expanduser()))
    files, links, problems = [], [], []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        kept = []
        for d in dirnames:
            if d.startswith("."):
                continue
            if (here / d).is_symlink():
                if not is_inside(here / d, root):
                    rel = (here / d).relative_to(root).as_posix()
                    links.append(f"{rel} -> {_target(here / d)} (a link to a folder outside {root.name}/: skipped)")
                continue  # a link inside the folder: its files are read where they are
            kept.append(d)
        dirnames[:] = kept
        for name in filenames:
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                if not os.path.exists(path):
                    links.append(f"{rel} -> {_target(path)} (a link that leads nowhere: skipped)")
                    continue
                if not is_inside(path, root):
                    links.append(f"{rel} -> {_target(path)} (a link to a file outside {root.name}/: skipped)")
                    continue
            try:
                mode = os.stat(path).st_mode
            except OSError as e:
                problems.append(f"{rel} cannot be read ({e.strerror}).")
                continue
            if not stat.S_ISREG(mode):
                problems.append(f"{rel} is not a regular file.")
                continue
            files.append((rel, path))
    if not files and not links and not problems:
        raise InputError(f"{root} contains no supported files ({', '.join(SUPPORTED_SUFFIXES)}).")
    files.sort(key=lambda f: f[0])
    return FolderListing(root=root, files=tuple(files), links=tuple(sorted(links)), problems=tuple(problems))


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR:
        raise InputError(f"on_error must be 'abort' or 'skip', not {on_error!r}.")
    return on_error


def check_bad_files(problems: Sequence[str], total: int, on_error: str) -> None:
    """Raise an InputError listing every bad file, unless ``on_error`` is ``skip`` and some file is good.

    ``problems`` has one message per bad file (each starting with the file's name); ``total``
    counts every file, good and bad.
    """
    check_on_error(on_error)
    if not problems:
        return
    good = total - len(problems)
    if good and on_error == "skip":
        return
    listed = "".join(f"\n- {p}" for p in problems)
    if not good:
        if len(problems) == 1:
            raise InputError(problems[0])
        raise InputError(f"None of the {total} files can be ingested:{listed}")
    others = f"the other {good} file{'s' if good > 1 else ''}"
    if len(problems) == 1:
        raise InputError(f"{problems[0]} Fix it, or {SKIP_HINT} to ingest {others}.")
    raise InputError(
        f"{len(problems)} of {total} files cannot be ingested:{listed}\nFix them, or {SKIP_HINT} to ingest {others}."
    )
