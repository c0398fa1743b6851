"""The one place that deletes, renames over or replaces files: it only ever touches what the Studio created.

Two kinds of paths are the Studio's:
- anything inside the data dir (``settings.data_dir``), which the Studio alone writes;
- an export (a file or a folder the user named) that carries the Studio's marker, written when it was
  exported, and that nobody changed since: a file's marker is a sidecar ``.<name>.studio-export.json``
  holding its SHA-256; a folder's is ``.studio-export.json`` inside it, listing every file with its size.

Everything else is the user's. An existing export target is an error that names it; with ``overwrite`` the
Studio replaces only its own unchanged export, never a user's file or folder (an empty folder is taken as
free: removing it loses nothing).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import InputError
from engine.settings import Settings

MARKER = ".studio-export.json"
OVERWRITE_HINT = "choose another target, or ask to overwrite (--overwrite, or the Overwrite box) to replace an export"


class UnsafeWriteError(InputError):
    """The Studio was asked to remove or replace a path it did not create."""


def _absolute(path: str | os.PathLike) -> Path:
    """The absolute path with ``..`` folded, links not followed (a link is removed, never its target)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def in_data_dir(path: str | os.PathLike, settings: Settings) -> bool:
    """Whether ``path`` lies strictly inside the data dir (by its name: links in the data dir are the Studio's own,
    such as a shared model cache)."""
    real, root = _absolute(path), _absolute(settings.data_dir)
    return real != root and real.is_relative_to(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}{MARKER}")


def _folder_files(folder: Path) -> dict[str, int]:
    """Every entry below ``folder`` but the marker: relative path -> size (-1 for links and odd files)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*filenames, *(d for d in dirnames if Path(dirpath, d).is_symlink())]:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel != MARKER:
                found[rel] = path.stat().st_size if path.is_file() and not path.is_symlink() else -1
    return found


def _read_marker(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("created_by") == "studio" else {}


def is_studio_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an export the Studio wrote and nobody has changed since."""
    path = Path(path).expanduser()
    if path.is_symlink():
        return False
    if path.is_file():
        marker = _read_marker(_sidecar(path))
        return bool(marker) and marker.get("sha256") == _sha256(path)
    if path.is_dir():
        marker = _read_marker(path / MARKER)
        return bool(marker) and marker.get("files") == _folder_files(path)
    return False


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def check_export_target(target: str | os.PathLike, overwrite: bool = False) -> Path:
    """``target`` as a path, if an export may be written there; else an InputError that names it."""
    target = Path(target).expanduser()
    if not os.path.lexists(target) or _is_empty_folder(target):
        return target
    if not overwrite:
        raise InputError(f"{target} already exists: {OVERWRITE_HINT} the Studio wrote.")
    if not is_studio_export(target):
        raise UnsafeWriteError(
            f"{target} already exists and is not an unchanged export of the Studio, so it is left as it is: "
            "choose another target."
        )
    return target


def _marker(**fields) -> str:
    return json.dumps({"created_by": "studio", "written": datetime.now(UTC).isoformat(), **fields}, indent=1)


@contextlib.contextmanager
def scratch_beside(target: Path, suffix: str = "tmp") -> Iterator[Path]:
    """A new unique path beside ``target`` (same filesystem, so renaming it is atomic); whatever is left
    there when the block ends was made by this block and is removed."""
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.{suffix}")
    try:
        yield scratch
    finally:
        if scratch.is_dir() and not scratch.is_symlink():
            shutil.rmtree(scratch, ignore_errors=True)
        elif os.path.lexists(scratch):
            scratch.unlink()


def write_atomic(path: str | os.PathLike, text: str | bytes) -> Path:
    """Write a file whole or not at all (a temp file beside it, renamed over it): for the Studio's own files
    in the data dir and for new files. Exports to the user's paths go through :func:`publish_file`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with scratch_beside(path) as tmp:
        tmp.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        os.replace(tmp, path)
    return path


def publish_file(target: str | os.PathLike, data: str | bytes, overwrite: bool = False) -> Path:
    """Export ``data`` as the file ``target`` with the Studio's marker beside it (see :func:`check_export_target`)."""
    target = check_export_target(target, overwrite)
    if target.is_dir():  # an empty folder of that name: the file takes its place
        target.rmdir()
    write_atomic(target, data)
    write_atomic(_sidecar(target), _marker(sha256=_sha256(target)))
    return target


def publish_folder(target: str | os.PathLike, build: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Export a folder: ``build(tmp)`` fills a new folder beside ``target``, which then takes its place whole.

    The target is checked before ``build`` runs (so a refusal costs nothing) and again before the swap.
    """
    target = check_export_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with scratch_beside(target) as tmp, scratch_beside(target, "old") as old:
        build(tmp)
        (tmp / MARKER).write_text(_marker(files=_folder_files(tmp)), encoding="utf-8")
        check_export_target(target, overwrite)
        if os.path.lexists(target):
            target.rename(old)  # a Studio export or an empty folder, checked just above
        try:
            tmp.rename(target)
        except OSError:
            if os.path.lexists(old):
                old.rename(target)  # put the previous export back
            raise
    return target


def _check_owned(path: Path, settings: Settings, action: str) -> None:
    if not in_data_dir(path, settings) and not is_studio_export(path):
        raise UnsafeWriteError(
            f"Refusing to {action} {path}: the Studio did not create it (it only {action}s what lies inside its "
            f"data dir {settings.data_dir} or an unchanged export it marked)."
        )


def remove_tree(path: str | os.PathLike, settings: Settings) -> bool:
    """Remove a folder (or file) the Studio created; False if there was nothing there."""
    path = Path(path).expanduser()
    if not os.path.lexists(path):
        return False
    _check_owned(path, settings, "remove")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        _sidecar(path).unlink(missing_ok=True)
    else:
        path.unlink()
    return True


def remove_file(path: str | os.PathLike, settings: Settings) -> bool:
    """Remove one file (or link) the Studio created; False if there was nothing there."""
    path = Path(path).expanduser()
    if path.is_dir() and not path.is_symlink():
        raise UnsafeWriteError(f"{path} is a folder, not a file: it is left as it is.")
    return remove_tree(path, settings)


def move(source: str | os.PathLike, target: str | os.PathLike, settings: Settings) -> Path:
    """Rename a path inside the data dir to a new name inside it; an existing target is an error."""
    source, target = Path(source), Path(target)
    for path in (source, target):
        if not in_data_dir(path, settings):
            raise UnsafeWriteError(f"Refusing to move {source} to {target}: both must lie inside {settings.data_dir}.")
    if os.path.lexists(target):
        raise InputError(f"{target} already exists: choose another name.")
    source.rename(target)
    return target
