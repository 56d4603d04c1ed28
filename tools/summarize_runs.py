"""Mean ± sd and a 95 % interval per figure over run folders (seeds of one recipe, or sweep runs).

    python tools/summarize_runs.py results/cluttermnist_joint_seed0 results/cluttermnist_joint_seed1 ...

Prints a Markdown table and writes it as `<out>.md` and `<out>.csv` (and `<out>_cross_digit.csv`
for the runs' cross-digit tables); by default `<out>` is `runs_summary` in the folder that holds the
run folders (their common parent), not the current folder.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.summary import runs_parent, summarize  # noqa: E402
from utils.errors import SummaryError  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders (<saveroot>/<savename>)")
    parser.add_argument("--out", default=None,
                        help="write <out>.md, <out>.csv (and <out>_cross_digit.csv); '' writes nothing "
                             "(default: runs_summary beside the run folders)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = os.path.join(runs_parent(args.run_dirs), "runs_summary")
    try:
        report, written = summarize(args.run_dirs, args.out or None)
    except (SummaryError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    print(report, end="")
    if written:
        print(f"written: {', '.join(written)}")
    return report


if __name__ == "__main__":
    main()
