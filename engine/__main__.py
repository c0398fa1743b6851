"""``python -m engine ...``: see :mod:`engine.cli`."""

import sys

if sys.argv[1:2] == ["job"]:
    # A background job's worker needs only its task's module: it starts without importing every command (1.2 s).
    from engine.jobs.worker import main_job

    sys.exit(main_job(sys.argv[2:]))

from engine.cli import main  # noqa: E402 - after the worker's early exit

sys.exit(main())
