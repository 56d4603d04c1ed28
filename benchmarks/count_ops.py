"""Top-level aten ops per training batch of each script: the launch-count proxy for GPU speed.

On a GPU each top-level op is at least one kernel launch (5-10 us from Python), so for this small
model the op count, not the FLOPs, sets the step time. Measured on any machine (CPU by default):
the script's main() runs under torch.profiler for one epoch with `--max_batches 5` and again with
`--max_batches 2`; ops of the first minus ops of the second, divided by 3, are the ops of one batch
(a training batch plus an evaluation batch, set-up and per-epoch work cancelling out), after an
unprofiled one-batch run that builds what a process builds once. An op is top-level when no other
aten op encloses it. Reports only; it never passes or fails.
    .venv/bin/python benchmarks/count_ops.py --datapath data/bench [--device cpu] [-- extra flags]
"""

import argparse
import collections
import contextlib
import io
import os
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]

from published import PUBLISHED  # noqa: E402
from utils.run.entry import load_script  # noqa: E402

def top_level_ops(events):
    """Counter of aten op names with no enclosing aten op."""
    counts = collections.Counter()
    for event in events:
        if not event.name.startswith("aten::"):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        if parent is None:
            counts[event.name] += 1
    return counts


def profiled_run(script, argv, profile=True):
    """Runs the script's main(argv) under the profiler (output silenced) -> Counter of top-level ops."""
    module = load_script(script)
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile else contextlib.nullcontext()
    with profiler, contextlib.redirect_stdout(io.StringIO()):
        module.main(argv)
    return top_level_ops(profiler.events()) if profile else None


def ops_per_batch(kind, datapath, device, extra, digit):
    script, flags = PUBLISHED[kind]
    counts = {}
    for batches in (1, 5, 2):  # the first, unprofiled, builds what is built once per process (e.g. the actor's table)
        with tempfile.TemporaryDirectory() as saveroot:
            argv = [*flags, "--datapath", datapath, "--saveroot", saveroot, "--digit", str(digit), "--epochs", "1",
                    "--max_batches", str(batches), "--device", device, "--wandb_mode", "disabled", *extra]
            if kind == "joint":
                argv += ["--pretrained", ""]
            counts[batches] = profiled_run(script, argv, profile=batches > 1)
    difference = counts[5] - counts[2]
    return sum(difference.values()) / 3, difference


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datapath", default=os.path.join("data", "Synthesis_mnist"), help="cluttered MNIST with >= 5 batches of 512")
    parser.add_argument("--digit", type=int, default=4)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--scripts", nargs="+", default=["pretrain", "joint"], choices=list(PUBLISHED))
    parser.add_argument("--top", type=int, default=12, help="list the most frequent ops")
    parser.add_argument("extra", nargs="*", help="flags passed on to both scripts (after --)")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, device {args.device}, extra flags {args.extra}")
    for kind in args.scripts:
        per_batch, difference = ops_per_batch(kind, args.datapath, args.device, args.extra, args.digit)
        common = ", ".join(f"{name[6:]} {count / 3:.0f}" for name, count in difference.most_common(args.top))
        print(f"{kind}: {per_batch:.0f} top-level aten ops per batch (train + test batch) | most frequent: {common}")


if __name__ == "__main__":
    main()
