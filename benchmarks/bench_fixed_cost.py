"""The fixed cost of an epoch, per script: what an epoch costs beyond its batches.

Each training script's main() runs, with its published flags, in this process for `--epochs` epochs on a tiny data set with
`--max_batches 1` (one training and one evaluation batch of `--batch_size` images), so the batch work
is small and the rest shows. Timed, per epoch (medians over the epochs after the first):
- epoch: the wall time of one epoch of `fit` (utils/run/loop.py);
- batches: the time inside the `step` of every batch (training iterations and evaluation rollouts);
- fixed: epoch minus batches, and its parts: checkpoint writes (best/last and the resume state),
  logging (metrics.jsonl, wandb, the epoch line), batch loop (loader iterators, moving batches to the
  device, the meter's reads) and the rest of the epoch function (metrics, evaluation set-up).
The generator (clutter_mnist_scale.py) has no epochs: its line is one run for one digit, with the
time spent generating images and the rest (start-up, writing, provenance).

    .venv/bin/python benchmarks/bench_fixed_cost.py [--device cpu|cuda] [--source bundled|torchvision --mnist_root DIR]

Reports only; it never passes or fails. On CUDA every timed call synchronises the device first.
"""

import argparse
import collections
import contextlib
import functools
import io
import json
import os
import statistics
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("BENCH_ROOT") or os.path.dirname(HERE)  # the checkout to time (bench_epochs.py times two)
sys.path[:0] = [ROOT, HERE]
os.environ.setdefault("WANDB_MODE", "disabled")

import models.agent  # noqa: E402
import models.encoder  # noqa: E402
import utils.method2021.epochs  # noqa: E402
import utils.run.logging  # noqa: E402
import utils.run.loop  # noqa: E402
import utils.successor.epochs  # noqa: E402
from published import PUBLISHED  # noqa: E402 (the published flags of pretrain.sh and joint.sh)
from utils.run.entry import load_script  # noqa: E402

PARTS = ("checkpoints", "logging", "batch loop", "rest")
# what an epoch of the successor's agent scripts spends its time on (bench_epochs.py): (owner, attribute, share)
AGENT_SPANS = ((models.encoder.RoIEncoder, "features", "encoder"), (utils.successor.epochs, "rollout", "rollout"),
               (models.agent.RoIAgent, "sequence_logits", "policy update"), (utils.successor.epochs, "policy_terms", "policy update"),
               (utils.successor.epochs, "optimizer_step", "policy update"))


class EpochClock:
    """Per-epoch seconds of named phases; `phase(name)` times a block, nested blocks subtract from
    their enclosing block (so the parts add up to the epoch)."""

    def __init__(self, device):
        self.device = device
        self.epochs, self.current, self.stack = [], None, []

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @contextlib.contextmanager
    def phase(self, name, nested=True):
        """Times a block into `name`. `nested`: the block's time is taken from the enclosing phase
        (the parts add up to the epoch); otherwise it is only added to `name` (an "of which" figure)."""
        if self.current is None:  # outside an epoch (set-up, the final summary): not counted
            yield
            return
        self.sync()
        start = time.perf_counter()
        if nested:
            self.stack.append(0.0)
        try:
            yield
        finally:
            self.sync()
            elapsed = time.perf_counter() - start
            if not nested:
                self.current[name] += elapsed
            else:
                self.current[name] += elapsed - self.stack.pop()
                if self.stack:
                    self.stack[-1] += elapsed

    def timed(self, function, name, nested=True):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self.phase(name, nested):
                return function(*args, **kwargs)

        return wrapper


@contextlib.contextmanager
def patched(targets):
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]
    try:
        for owner, name, replacement in targets:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def timed_run(script, argv, device, spans=()):
    """Runs `script`'s main(argv) with the epoch clock -> list of per-epoch {phase: seconds};
    `spans`: (owner, attribute, name) of calls whose time is also added up under `name`."""
    module = load_script(script)
    clock = EpochClock(device)
    original_fit = module.fit

    def fit(ctx, run_epoch, policy, modules, optimizers, schedulers, save_best, save_last, line, after_epoch=None, **kwargs):
        def epoch(epoch, final):
            if clock.current is not None:  # the previous epoch ends where this one starts
                clock.sync()
                clock.current["epoch"] = time.perf_counter() - clock.current.pop("_start")
                clock.epochs.append(clock.current)
            clock.current = collections.Counter()
            clock.sync()
            clock.current["_start"] = time.perf_counter()
            with clock.phase("rest"):
                return run_epoch(epoch, final)

        timed = lambda function: function and clock.timed(function, "checkpoints")
        result = original_fit(ctx, epoch, policy, modules, optimizers, schedulers, timed(save_best), timed(save_last), line,
                              timed(after_epoch), **kwargs)
        if clock.current is not None:  # the last epoch ends with fit's loop (its final `last` write included)
            clock.sync()
            clock.current["epoch"] = time.perf_counter() - clock.current.pop("_start")
            clock.epochs.append(clock.current)
            clock.current = None
        return result

    def batches(run_batches):
        @functools.wraps(run_batches)
        def wrapper(loader, device_, phase, epoch, loop, step, *args, **kwargs):
            with clock.phase("batch loop"):
                return run_batches(loader, device_, phase, epoch, loop, clock.timed(step, "batches"), *args, **kwargs)

        return wrapper

    loop = utils.run.loop
    targets = [(module, "fit", fit),
               (loop, "save_resume", clock.timed(loop.save_resume, "checkpoints")),
               (loop, "epoch_line", clock.timed(loop.epoch_line, "logging")),
               (utils.run.logging.RunLogger, "log", clock.timed(utils.run.logging.RunLogger.log, "logging")),
               (utils.method2021.epochs, "run_batches", batches(utils.method2021.epochs.run_batches)),
               (utils.successor.epochs, "run_batches", batches(utils.successor.epochs.run_batches))]
    targets += [(owner, name, clock.timed(getattr(owner, name), span, nested=False)) for owner, name, span in spans]
    targets += [(module, name, clock.timed(getattr(module, name), span, nested=False)) for name, span in (("evaluation_pass", "test pass"),)
                if hasattr(module, name)]
    with patched(targets), contextlib.redirect_stdout(io.StringIO()):
        module.main(argv)
    return clock.epochs


def report(name, epochs):
    """One line: medians over the epochs after the first (which builds what a run builds once)."""
    kept = epochs[1:] if len(epochs) > 1 else epochs
    median = lambda key: statistics.median(e[key] for e in kept) * 1e3
    fixed = [(e["epoch"] - e["batches"]) * 1e3 for e in kept]
    parts = " | ".join(f"{part} {median(part):.1f}" for part in PARTS)
    print(f"{name:18s} epoch {median('epoch'):7.1f} ms | batches {median('batches'):7.1f} | fixed {statistics.median(fixed):6.1f} ms "
          f"({parts}) | {len(kept)} epochs", flush=True)
    return statistics.median(fixed)


def make_data(args, root):
    """Tiny data of both methods in `root`: the 2021 cluttered digit 4 and the successor's patch and
    clutter backgrounds of digits 2 and 3 -> the generator's timing line."""
    generator = load_script("clutter_mnist_scale.py")
    source = ["--source", args.source] + (["--mnist_root", args.mnist_root, "--no_download"] if args.mnist_root else [])
    timings = {}
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        generator.main([*source, "--digits", "4", "--datapath", os.path.join(root, "clutter")])
        timings["run"] = time.perf_counter() - start
        for background in ("patch", "clutter"):
            generator.main([*source, "--digits", "2", "3", "--bg_name", background, "--datapath", os.path.join(root, "corrupted")])
    return timings


def worker(script, argv):
    """`--worker SCRIPT ARGS...` (bench_epochs.py): times SCRIPT of the checkout BENCH_ROOT names and
    prints its epochs, with the agent scripts' shares, as one JSON line."""
    device = torch.device(argv[argv.index("--device") + 1] if "--device" in argv else "cpu")
    epochs = timed_run(script, argv, device, AGENT_SPANS)
    print("EPOCHS " + json.dumps([dict(epoch) for epoch in epochs]))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(argv[1], argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--source", default="bundled", choices=["bundled", "torchvision"], help="digits of the tiny data")
    parser.add_argument("--mnist_root", default="", help="with --source torchvision: the folder holding MNIST/raw")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per script (the first is not counted)")
    parser.add_argument("--batch_size", type=int, default=16, help="images per batch (one training and one evaluation batch)")
    parser.add_argument("--scripts", nargs="+", default=["generate", "pretrain", "joint", "encoder", "agent", "adapt"])
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(f"fixed cost per epoch, ms (torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
          f"batch {args.batch_size}, --max_batches 1)")
    with tempfile.TemporaryDirectory() as root:
        generate_start = time.perf_counter()
        make_data(args, root)
        if "generate" in args.scripts:
            print(f"{'generate':18s} one digit, both splits, {time.perf_counter() - generate_start:.2f} s for the tiny data sets (no epochs)")
        runs = os.path.join(root, "runs")
        common = ["--saveroot", runs, "--device", args.device, "--wandb_mode", "disabled", "--epochs", str(args.epochs),
                  "--max_batches", "1", "--batch_size", str(args.batch_size), "--log_interval", "1"]
        clutter, corrupted = os.path.join(root, "clutter"), os.path.join(root, "corrupted")
        few = ["--samples_per_class", "4", "--sample_size", str(4 * args.batch_size)]
        jobs = [
            ("pretrain", PUBLISHED["pretrain"][0], [*PUBLISHED["pretrain"][1], "--datapath", clutter, "--savename", "pre"]),
            ("joint", PUBLISHED["joint"][0], [*PUBLISHED["joint"][1], "--datapath", clutter, "--savename", "joint",
                                              "--pretrained", "pre/best.pth.tar"]),
            ("encoder", "pretrain_encoder_ordinal.py", ["--datapath", corrupted, "--savename", "enc", "--bg_name", "patch", "--digit", "3", *few]),
            ("agent", "train_agent.py", ["--datapath", corrupted, "--savename", "agent", "--bg_name", "patch", "--digit", "3",
                                         "--pretrained", "enc/best.pth.tar", *few]),
            ("adapt", "adapt_agent.py", ["--datapath", corrupted, "--savename", "adapt", "--bg_name", "clutter", "--digit", "2",
                                         "--pretrained_agent", "agent/best.pth.tar", "--sample_size", str(4 * args.batch_size)]),
        ]
        needed = {"joint": "pretrain", "agent": "encoder", "adapt": "agent"}
        wanted = set(args.scripts)
        for name in list(wanted):
            while name in needed:
                name = needed[name]
                wanted.add(name)
        for name, script, flags in jobs:
            if name in wanted:
                epochs = timed_run(script, [*flags, *common], device)  # common last: its --batch_size wins
                if name in args.scripts:
                    report(f"{name} ({script.split('.')[0][:9]})", epochs)


if __name__ == "__main__":
    main()
