"""Ingesting a large text file: peak memory over the process at rest, and time, phase by phase.

    .venv/bin/python bench/ingest_memory.py --size-mb 200 --minutes 5 --out docs/ingestion.md

The file is real text: the shared Wikipedia paragraphs, shuffled and repeated to the size asked,
written to a temp folder. Each phase runs in a fresh process. "At rest" is that process with the
Studio imported, the embedder loaded and the knowledge-base store open; the peak is the kernel's
high-water mark of resident memory (VmHWM, reset at rest through /proc/self/clear_refs), so it
catches every transient. Phases run under the allocator of background jobs (tcmalloc where it is
installed, see engine/allocator.py), as the page's ingest does. Phases:

- scan: check the whole file and estimate the ingest (chunks, minutes), as the page does first;
- chunk: read and chunk the whole file, nothing embedded (where the old code took 7.3 GB);
- ingest: the real ingest (MiniLM on this CPU) for --minutes, then cancelled as the page's Cancel
  does; the knowledge base must then say "incomplete: N of M documents" (--minutes 0: to its end);
- resume: the same ingest again, until it is one batch past what was stored (stored chunks are
  skipped without embedding);
- rollback: remove what the unfinished ingest added;
- store-all (with --store-all): every chunk of the file stored, vectors from a stand-in (a hash,
  not the model) so that it ends in minutes: Chroma's own memory at the full size.

The whole file's real ingest takes longer than a working session here (about 3 h at 34 chunks/s),
so ``--work DIR`` runs it in parts, as a user's Cancel and Resume do: the file and the data dir are
kept in DIR; the first call scans, chunks and ingests for --minutes, then cancels; each later call
resumes (a fresh process) for --minutes more (0: to the end). Every part's peak over its own rest
is recorded in DIR/parts.jsonl; once the ingest ends, the table lists every part, and the whole
file's peak is the largest (the last part holds the full index).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402
from engine.allocator import allocator_env, find_allocator  # noqa: E402

MB = 1024**2
KB_NAME = "bench-ingest"


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def make_file(path: Path, size_mb: int, shared: Path) -> None:
    passages = [json.loads(line)["text"] for line in (shared / "wiki-passages.jsonl").open(encoding="utf-8")]
    rng, written = random.Random(0), 0
    with path.open("w", encoding="utf-8") as f:
        while written < size_mb * MB:
            rng.shuffle(passages)
            for text in passages:
                written += f.write(text + "\n\n")
                if written >= size_mb * MB:
                    break


class HashEmbedder:
    """Unit vectors from a hash of the text: the store's work without the model's (store-all only)."""

    def __init__(self, real):
        self.spec = real.spec

    def embed(self, texts, on_progress=None):
        import numpy as np

        out = []
        for text in texts:
            v = np.random.default_rng(abs(hash(text)) % (1 << 32)).standard_normal(384)
            out.append((v / np.linalg.norm(v)).tolist())
        return out


class Stop(Exception):
    pass


def phase(name: str, file: Path, data: Path, minutes: float, stored_before: int) -> dict:
    """Run one phase in this process; its measurements."""
    os.environ["STUDIO_DATA_DIR"] = str(data)
    from engine.rag.embedder import Embedder
    from engine.rag.ingest import ingest_source, kb_state, preview_source, rollback_ingest
    from engine.rag.store import KnowledgeBaseStore
    from engine.settings import load_settings

    embedder = Embedder.shared()
    embedder.embed(["warm up"])
    store = KnowledgeBaseStore(load_settings(), embedder if name != "store-all" else HashEmbedder(embedder))
    store.names()
    args = {"kb": KB_NAME, "path": str(file)}
    rest = rss_mb()
    exact = reset_peak()
    start = time.perf_counter()
    out: dict = {}
    if name == "scan":
        scan, guess = preview_source(args, embedder)
        out = {"chunks": guess.chunks, "estimate_s": guess.seconds, "documents": guess.documents}
    elif name == "chunk":
        from engine.rag.chunking import ChunkSpec, iter_chunks
        from engine.rag.sources import read_documents, scan_path

        out = {"chunks": sum(1 for _ in iter_chunks(read_documents(scan_path(file)), ChunkSpec()))}
    elif name in ("ingest", "resume", "store-all", "finish"):
        stop_at = {"resume": stored_before + 256}.get(name)
        deadline = start + minutes * 60 if name in ("ingest", "finish") and minutes > 0 else float("inf")
        seen = [0]

        def progress(done: int, total: int) -> None:
            seen[0] = done
            if time.perf_counter() > deadline or (stop_at is not None and done >= stop_at):
                raise Stop

        try:
            report = ingest_source(store, args, progress)
            out = {"chunks": report.chunks, "added": report.added, "finished": True}
        except Stop:
            out = {"chunks": seen[0], "finished": False}
        state = kb_state(store, KB_NAME)
        out["state"] = state.label if state else "complete"
    elif name == "rollback":
        out = {"removed": rollback_ingest(store, KB_NAME), "left": KB_NAME in store.names()}
    seconds = time.perf_counter() - start
    peak = rss_mb("VmHWM")
    return out | {"phase": name, "seconds": seconds, "rest_mb": rest, "peak_mb": peak,
                  "over_rest_mb": peak - rest if exact else float("nan")}  # fmt: skip


def run_phase(name: str, file: Path, data: Path, minutes: float, stored: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--file", str(file), "--data", str(data),
           "--minutes", str(minutes), "--stored", str(stored)]  # fmt: skip
    # under the allocator background jobs get (engine.allocator): the page's ingest is such a job
    done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env=allocator_env(os.environ, release_freed=True))  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    print(json.dumps(result), file=sys.stderr)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--minutes", type=float, default=5.0,
                   help="minutes the real ingest runs before its cancel (0: to its end, about 3 h here)")  # fmt: skip
    p.add_argument("--store-all", action="store_true", help="also store every chunk with stand-in vectors")
    p.add_argument("--out")
    p.add_argument("--phase", help=argparse.SUPPRESS)
    p.add_argument("--file", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--stored", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--work", help="run the whole file's ingest in parts, keeping the file and data here")
    a = p.parse_args()
    if a.phase:
        print(json.dumps(phase(a.phase, Path(a.file), Path(a.data), a.minutes, a.stored)))
        return 0
    if a.work:
        return in_parts(Path(a.work), a.size_mb, a.minutes, a.out)
    from engine.settings import load_settings

    allocator = find_allocator(os.environ.get("STUDIO_ALLOCATOR", "auto")) or "the system's allocator"
    with tempfile.TemporaryDirectory(prefix="studio-ingest-bench-") as tmp:
        file, data = Path(tmp) / f"big-{a.size_mb}mb.txt", Path(tmp) / "data"
        make_file(file, a.size_mb, load_settings().shared_data_dir)
        size = file.stat().st_size / MB
        rows = [run_phase("scan", file, data, a.minutes), run_phase("chunk", file, data, a.minutes)]
        rows.append(run_phase("ingest", file, data, a.minutes))
        if not rows[-1]["finished"]:  # an ingest run to its end leaves nothing to resume or roll back
            rows.append(run_phase("resume", file, data, a.minutes, rows[-1]["chunks"]))
            rows.append(run_phase("rollback", file, data, a.minutes))
        if a.store_all:
            rows.append(run_phase("store-all", file, Path(tmp) / "data-all", a.minutes))
    scan, chunk, ingest = rows[0], rows[1], rows[2]
    rate = ingest["chunks"] / ingest["seconds"]
    notes = {
        "scan": f"estimate: {scan['chunks']:,} chunks, {scan['estimate_s'] / 3600:.1f} h of embedding",
        "chunk": f"{chunk['chunks']:,} chunks (estimate off by {scan['chunks'] / chunk['chunks'] - 1:+.1%})",
        "ingest": f"{ingest['chunks']:,} chunks stored ({rate:.0f}/s), "
        f"{'to the end' if ingest['finished'] else 'cancelled'}; then: {ingest['state']}",
    }
    for row in rows[3:]:
        if row["phase"] == "resume":
            notes["resume"] = f"past the {ingest['chunks']:,} stored chunks to {row['chunks']:,}; then: {row['state']}"
        elif row["phase"] == "rollback":
            notes["rollback"] = f"{row['removed']:,} chunks removed; knowledge base left: {row['left']}"
        else:
            notes["store-all"] = f"{row['chunks']:,} chunks stored, stand-in vectors; then: {row['state']}"
    lines = [
        f"Ingesting a {size:.0f} MB text file ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"chunks of 800 characters, MiniLM-L6; each phase a fresh process, {allocator} as in a background job).",
        "",
        "| phase | seconds | RSS at rest (MB) | peak over rest (MB) | what happened |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['phase']} | {row['seconds']:.1f} | {row['rest_mb']:.0f} | {row['over_rest_mb']:.0f} | "
                     f"{notes[row['phase']]} |")  # fmt: skip
    emit("\n".join(lines) + "\n", a.out)
    return 0


def in_parts(work: Path, size_mb: int, minutes: float, out: str | None) -> int:
    """One part of the whole file's ingest (see the module docstring); the table once it has ended."""
    from engine.settings import load_settings

    work.mkdir(parents=True, exist_ok=True)
    file, data, log = work / f"big-{size_mb}mb.txt", work / "data", work / "parts.jsonl"
    if not file.exists():
        make_file(file, size_mb, load_settings().shared_data_dir)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    done = [r for r in rows if r["phase"] in ("ingest", "finish")]
    new = [run_phase("scan", file, data, minutes), run_phase("chunk", file, data, minutes)] if not rows else []
    if not (done and done[-1]["finished"]):  # an ended ingest only prints its table again
        stored = done[-1]["chunks"] if done else 0
        new.append(run_phase("finish" if done else "ingest", file, data, minutes, stored))
    new = [r | {"date": time.strftime("%Y-%m-%d %H:%M")} for r in new]
    with log.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in new)
    rows += new
    parts = [r for r in rows if r["phase"] in ("ingest", "finish")]
    if not parts[-1]["finished"]:
        print(f"part {len(parts)}: {parts[-1]['chunks']:,} chunks stored; run again to go on", file=sys.stderr)
        return 0
    scan, chunk = rows[0], rows[1]
    lines = [
        f"The whole {file.stat().st_size / MB:.0f} MB file's real ingest, in {len(parts)} parts (each a fresh "
        f"process, cancelled after its minutes as the page's Cancel does, the next resuming: stored chunks are "
        f"skipped without embedding; {os.cpu_count()} cores, MiniLM-L6; {parts[0]['date']} to {parts[-1]['date']}).",
        "",
        "| phase | seconds | RSS at rest (MB) | peak over rest (MB) | what happened |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| scan | {scan['seconds']:.1f} | {scan['rest_mb']:.0f} | {scan['over_rest_mb']:.0f} | estimate: "
        f"{scan['chunks']:,} chunks, {scan['estimate_s'] / 3600:.1f} h of embedding |",
        f"| chunk | {chunk['seconds']:.1f} | {chunk['rest_mb']:.0f} | {chunk['over_rest_mb']:.0f} | "
        f"{chunk['chunks']:,} chunks |",
    ]
    before = 0
    for n, r in enumerate(parts, start=1):
        rate = (r["chunks"] - before) / r["seconds"]
        lines.append(f"| ingest, part {n} | {r['seconds']:.0f} | {r['rest_mb']:.0f} | {r['over_rest_mb']:.0f} | "
                     f"{before:,} to {r['chunks']:,} chunks ({rate:.0f}/s); then: {r['state']} |")  # fmt: skip
        before = r["chunks"]
    peak = max(r["over_rest_mb"] for r in parts)
    lines += ["", f"**Whole file: peak {peak:.0f} MB over rest** (the target: at most 1,500 MB)."]
    emit("\n".join(lines) + "\n", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
