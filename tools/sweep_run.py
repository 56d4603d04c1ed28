"""Runs one wandb sweep run of a training script in its own run folder with its own seed.

The `command` of the configs in sweeps/ calls it as
    python tools/sweep_run.py <training script> --flag=value ...
and it runs the script with those flags plus, unless the sweep sets them: `--savename
sweep_<sweep id>/<run id>`, `--seed` derived from the wandb run id, `--datapath $DATAPATH` and
`--saveroot $SAVEROOT`. The script logs to the sweep's wandb run (the agent sets WANDB_RUN_ID);
the run folder gets `launch.json` (command, seed, start, wall time, exit code).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.launch import run_recorded, sweep_command  # noqa: E402
from utils.errors import LaunchError  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    try:
        command, run_dir, seed, run_id = sweep_command(argv[0], argv[1:], os.environ)
        print(f"sweep run {run_id}: seed {seed}, run folder {run_dir}", flush=True)
        code = run_recorded(command, run_dir, seed)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
