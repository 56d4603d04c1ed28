"""Epochs of the successor's agent scripts, this checkout against a reference checkout, side by side.

Times an adaptation epoch (scripts/adapt.sh: clutter/2, batch 512, the whole target train split)
and an agent-training epoch (scripts/train_agent.sh: patch/3, 50 training images, batch 50, the whole
test split) with the published flags, in fresh processes that alternate between the two checkouts
(so a drift of the machine hits both alike). Each run trains `--epochs` epochs; the first is not
counted. Reported per script and checkout: the median epoch, its batches and fixed cost
(bench_fixed_cost.py's clock) and what the epoch's time went to: the frozen encoder's passes, the
rollouts (RoIAlign, the embedding head and the agent's steps), the policy-gradient update and the
test pass (which holds rollouts and encoder passes of its own). Then the ratio reference / this.

    .venv/bin/python benchmarks/bench_epochs.py --datapath DATA --encoder ENC.pth.tar --agent AGENT.pth.tar \
        --reference ../older-checkout [--epochs 3] [--repeats 2]

DATA holds `clutter_mnist_scale.py --bg_name patch` and `--bg_name clutter` data of digits 2 and 3
(full MNIST for the published sizes); ENC is an encoder checkpoint of pretrain_encoder_ordinal.py and
AGENT an agent checkpoint of train_agent.py (any: the time of an epoch does not depend on the
weights). Reports only; it never passes or fails.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
THIS = os.path.dirname(HERE)
SHARES = ("encoder", "rollout", "policy update", "test pass")


def published(kind, args, saveroot):
    """The flags of scripts/adapt.sh or scripts/train_agent.sh, for `--epochs` epochs."""
    common = ["--datapath", args.datapath, "--saveroot", saveroot, "--device", args.device, "--wandb_mode", "disabled",
              "--epochs", str(args.epochs), "--num_act", "10", "--overwrite", "1", "--savename", kind, "--max_batches", str(args.max_batches)]
    if kind == "adapt":
        subset = ["--sample_size", str(args.sample_size)] if args.sample_size else []
        return "adapt_agent.py", [*common, "--pretrained_agent", os.path.abspath(args.agent), "--bg_name", "clutter", "--digit", "2",
                                  "--batch_size", "512", *subset]
    return "train_agent.py", [*common, "--pretrained", os.path.abspath(args.encoder), "--img_size", "84", "--bg_name", "patch",
                              "--sample_size", "50", "--digit", "3", "--batch_size", "50", "--steps_ag", "200"]


def run_once(root, kind, args, saveroot):
    script, argv = published(kind, args, saveroot)
    command = [sys.executable, os.path.join(HERE, "bench_fixed_cost.py"), "--worker", script, *argv]  # imports the code of `root`
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, env={**os.environ, "WANDB_MODE": "disabled", "BENCH_ROOT": root})
    lines = [line for line in result.stdout.splitlines() if line.startswith("EPOCHS ")]
    if result.returncode != 0 or not lines:
        sys.exit(f"{kind} in {root} failed (exit {result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1][len("EPOCHS "):])[1:]  # the first epoch builds what a run builds once


def describe(epochs):
    median = lambda key: statistics.median(e.get(key, 0.0) for e in epochs)
    epoch = median("epoch")
    shares = " | ".join(f"{name} {100 * median(name) / epoch:.0f} %" for name in SHARES)
    return epoch, (f"epoch {epoch:6.2f} s | batches {median('batches'):6.2f} s | fixed {1e3 * (epoch - median('batches')):5.0f} ms | "
                   f"{shares} | {len(epochs)} epochs")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datapath", required=True, help="successor data (patch and clutter, digits 2 and 3)")
    parser.add_argument("--encoder", required=True, help="an encoder checkpoint (agent training)")
    parser.add_argument("--agent", required=True, help="an agent checkpoint (adaptation)")
    parser.add_argument("--reference", required=True, help="the checkout to compare with (e.g. a `git worktree add` of an older commit)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, the first not counted (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per checkout and script, alternating (default 2)")
    parser.add_argument("--scripts", nargs="+", default=["adapt", "agent"], choices=["adapt", "agent"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where both checkouts run (default cpu)")
    parser.add_argument("--max_batches", type=int, default=0, help="batches per pass (0: all; benchmarks/gpu_check.sh's reduced CPU run)")
    parser.add_argument("--sample_size", type=int, default=0, help="adaptation: this many target train images (0: all)")
    parser.add_argument("--saveroot", default=os.path.join(THIS, "results", "bench_epochs"), help="where the runs go (overwritten)")
    args = parser.parse_args(argv)
    checkouts = {"reference": os.path.abspath(args.reference), "this": THIS}
    print(f"epochs of the published agent scripts on {args.device}, 2 checkouts alternating, {args.repeats} runs x {args.epochs - 1} "
          "counted epochs each")
    for kind in args.scripts:
        epochs = {name: [] for name in checkouts}
        for _ in range(args.repeats):
            for name, root in checkouts.items():
                epochs[name] += run_once(root, kind, args, os.path.join(args.saveroot, name))
        medians = {}
        for name in checkouts:
            medians[name], line = describe(epochs[name])
            print(f"{kind:6s} {name:9s} {line}", flush=True)
        print(f"{kind:6s} reference / this: {medians['reference'] / medians['this']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
