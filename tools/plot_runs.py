"""Learning curves of several runs on one figure: the selection metric on the test (or validation)
split and on the training split, per epoch; runs of one recipe (the same script, selection metric and
flags but --seed) are drawn as their mean with a ± sd band, other runs one line each.

    python tools/plot_runs.py results/cluttermnist_joint_seed0 results/cluttermnist_joint_seed1 ...

Writes `--out` (default: runs_curves.png beside the run folders) and prints where.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.plots import plot_runs  # noqa: E402
from tools.summary import runs_parent  # noqa: E402
from utils.errors import UserError  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders (<saveroot>/<savename>)")
    parser.add_argument("--out", default=None, help="the figure (.png; default: runs_curves.png beside the run folders)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(runs_parent(args.run_dirs), "runs_curves.png")
    if os.path.splitext(out)[1].lower() not in (".png", ".pdf", ".svg"):
        parser.error(f"--out {out}: give a .png, .pdf or .svg file")
    try:
        path, groups = plot_runs(args.run_dirs, out)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    for label, members in groups.items():
        print(f"{label}: {', '.join(members)}")
    print(f"written: {path}")
    return path, groups


if __name__ == "__main__":
    main()
