"""The memory allocator of long-running work (training, evaluation, ingestion): tcmalloc where installed.

PyTorch on a CPU frees and allocates blocks of a new size at every training step (each batch
has its own length). glibc's allocator keeps the freed blocks, so a training run's RSS grows
step by step and the steps slow down. Measured on 2 cores (30 LoRA steps of the HotpotQA
recipe, docs/fine-tuning.md): glibc 277 tokens/s at 5.7 GB peak RSS, tcmalloc 322 tokens/s at
4.3 GB, jemalloc 264 tokens/s at 1.7 GB.

An allocator is chosen when a process starts (``LD_PRELOAD``), so background jobs are started
with it and ``python -m engine train`` / ``eval`` / ``ingest`` / ``loop`` / ``ab`` start themselves again with
it. The choice is ``STUDIO_ALLOCATOR``: ``auto`` (default: tcmalloc if installed, else the system's),
``tcmalloc``, ``jemalloc`` or ``system``. Linux only; elsewhere the system's is used.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping, Sequence

LIBRARIES = {"tcmalloc": ("tcmalloc_minimal", "tcmalloc"), "jemalloc": ("jemalloc",)}
CHOICES = ("auto", "system", *LIBRARIES)
MARK = "STUDIO_ALLOCATOR_LOADED"  # set in a process started with the allocator: never start twice


def find_allocator(choice: str = "auto") -> str | None:
    """The shared library to preload for ``choice`` (a name the dynamic loader finds), or None."""
    if choice not in CHOICES:
        choice = "auto"  # an unknown setting must not stop a training run
    if choice == "system" or not sys.platform.startswith("linux"):
        return None
    for name in LIBRARIES["tcmalloc" if choice == "auto" else choice]:
        if found := ctypes.util.find_library(name):
            return found
    return None


def allocator_env(env: Mapping[str, str], release_freed: bool = False) -> dict[str, str]:
    """``env`` with the chosen allocator preloaded (unchanged when there is none).

    ``release_freed``: tcmalloc hands freed pages back to the system at once. For ingestion, whose
    Chroma index is copied each time it grows: tcmalloc otherwise keeps every copy it freed (measured
    on 392,669 chunks: 1.60 GB over the process at rest, 1.06 GB with it; docs/ingestion.md).
    """
    env = dict(env)
    library = find_allocator(env.get("STUDIO_ALLOCATOR", "auto"))
    if library and library not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = " ".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    if release_freed and library and "tcmalloc" in library:
        env.setdefault("TCMALLOC_AGGRESSIVE_DECOMMIT", "true")
    env[MARK] = "1"
    return env


def restart_with_allocator(argv: Sequence[str], release_freed: bool = False) -> None:
    """Replace this process with ``python argv...`` under the chosen allocator; returns when there
    is nothing to change (no allocator installed, ``system`` chosen, or already started with it)."""
    if os.environ.get(MARK):
        return
    env = allocator_env(os.environ, release_freed)
    if env.get("LD_PRELOAD", "") == os.environ.get("LD_PRELOAD", ""):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)
