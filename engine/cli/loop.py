"""``python -m engine loop``: the guided loop from the command line (start it, or continue it after a stop)."""

from __future__ import annotations

from engine.loop import AUTO, STEPS, LoopSpec, misses_args, run_loop, start_loop
from engine.settings import load_settings


def add_loop_arguments(sub) -> None:
    lp = sub.add_parser("loop", help="the guided loop: folder -> knowledge base -> QA -> adapter -> paired comparison")
    lp.add_argument("name", help="the collection's name (its knowledge base; <name>-qa, <name>-lora)")
    lp.add_argument("--folder", default="", help="the documents (needed to start a loop)")
    lp.add_argument(
        "--questions",
        default="",
        help="evaluation questions written by people: a dataset NAME[@VERSION] (see `data import`); "
        "default: the generated test split",
    )
    lp.add_argument("--passages", type=int, default=0, help="chunks to generate QA from (0: all)")
    lp.add_argument("--answers-per-passage", type=int, default=LoopSpec.answers_per_passage)
    lp.add_argument("--eval-limit", type=int, default=LoopSpec.eval_limit)
    lp.add_argument(
        "--start-from",
        default=AUTO,
        help="the adapter training continues: auto (the best HotpotQA-trained adapter for the "
        "collection's kind of answers, if one is saved), an adapter's name, or none (a new adapter)",
    )
    lp.add_argument("--until", default="", choices=["", *STEPS], help="stop after this step")
    lp.add_argument("--restart", action="store_true", help="forget the finished steps and start again")


def run_loop_command(a) -> int:
    settings = load_settings()
    if a.folder or a.restart:
        start = "" if a.start_from.strip().lower() == "none" else a.start_from.strip()
        spec = LoopSpec(
            a.name, a.folder, a.questions, a.passages, a.answers_per_passage, a.eval_limit, start_from=start
        )
        start_loop(settings, spec, restart=a.restart)
    record = run_loop(settings, a.name, lambda f, m: print(f"[{100 * f:5.1f}%] {m}", flush=True), until=a.until)
    for step, found in record["steps"].items():
        print(f"{step:<9} {found['seconds'] / 60:6.1f} min  {found.get('summary', '')}")
    if args := misses_args(record):
        print(
            f"The adapter's test misses as training items (a new version of {args['dataset']}): python -m engine "
            f"data hard-cases {args['dataset']} --version {args['version']} --run {args['run_id']}"
        )
    return 0
