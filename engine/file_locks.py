"""Locks between processes on a lock file (``fcntl.flock``).

The kernel releases a process's locks when it ends, however it ends, so a crashed holder never leaves a
lock behind: its lock file stays (with the dead holder's pid in it) and the next process simply takes it.
Lock files are never deleted: a process may have one open and be waiting on it, and removing it would let a
third process lock a new file of the same name while the waiting one locks the old, unlinked one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def held(path: str | os.PathLike) -> Iterator[None]:
    """Wait for, then hold, the exclusive lock on ``path`` (created if missing) for the block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:  # append mode creates the file without truncating it
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
        yield


class Claim:
    """An exclusive lock taken without waiting, with the holder's pid written in the lock file.

    Held until :meth:`release`, the end of a ``with`` block, or the end of the process. A second claim of the
    same file is refused, from another process or from this one (each claim opens the file anew).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ClaimedError(self.path, holder(self.path)) from None
        # the file may still hold the pid of a holder that died: replace it with ours
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd: int | None = fd

    @property
    def active(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        """Give the claim up (a second call does nothing)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        os.ftruncate(fd, 0)  # no pid left to name a holder that is gone
        os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class ClaimedError(Exception):
    """The lock file is claimed by someone else; ``pid`` is the holder's, when it has written it yet."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"{path} is claimed by {'pid ' + str(pid) if pid else 'another holder'}")
        self.path, self.pid = path, pid


def holder(path: str | os.PathLike) -> int | None:
    """The pid written in a lock file; None when it is empty, unreadable or missing."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
