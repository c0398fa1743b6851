"""``python -m engine``: the command line (for now only ``job``, the background-job worker)."""

import sys

from engine.jobs import main_job

if sys.argv[1:2] == ["job"]:
    sys.exit(main_job(sys.argv[2:]))
else:
    print("usage: python -m engine job {run <job_dir> | list | status <id> | cancel <id>}", file=sys.stderr)
    sys.exit(2)
