"""``python -m engine loop``: the guided loop from the command line (start it, or continue it after a stop)."""

from __future__ import annotations

from engine.knobs import add_knob_argument, add_knob_arguments, knob_values
from engine.loop import LoopRun, LoopSpec, misses_args, run_loop, start_loop
from engine.settings import load_settings

# The loop settings the `loop` command reads as they are (the name and the folder are its own arguments).
LOOP_KNOBS = ("questions", "passages", "answers_per_passage", "eval_limit", "start_from")


def add_loop_arguments(sub) -> None:
    lp = sub.add_parser("loop", help="the guided loop: folder -> knowledge base -> QA -> adapter -> paired comparison")
    lp.add_argument("name", help="the collection's name (its knowledge base; <name>-qa, <name>-lora)")
    lp.add_argument("--folder", default="", help="the documents (needed to start a loop)")
    add_knob_arguments(lp, LoopSpec, LOOP_KNOBS)
    add_knob_argument(lp, LoopRun, "until")
    lp.add_argument("--restart", action="store_true", help="forget the finished steps and start again")


def run_loop_command(a) -> int:
    settings = load_settings()
    if a.folder or a.restart:
        values = knob_values(LoopSpec, a, LOOP_KNOBS)
        values["start_from"] = "" if a.start_from.strip().lower() == "none" else a.start_from.strip()
        spec = LoopSpec(name=a.name, folder=a.folder, **values)
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
