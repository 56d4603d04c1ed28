"""The one epoch loop of every training script (`fit`) and the batch loop inside an epoch
(`run_batches`).

Per batch nothing waits for the device: an `EpochMeter` keeps named sums on it, read once per
`log_interval` batches (progress bar, non-finite check) and once per epoch. After every epoch `fit`
writes the resume state, so a run killed at any moment continues with --resume 1.
"""

import collections
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from tqdm import tqdm

from utils.errors import NonFiniteLoss
from utils.run.checkpoints import background_writes
from utils.run.files import write_json
from utils.run.folder import record_selection
from utils.run.logging import EpochLine, epoch_line, format_metrics, read_records
from utils.run.resume import apply_resume, save_resume


@dataclass(frozen=True)
class LoopConfig:
    """What every batch loop reads: progress and non-finite checks every `log_interval` batches,
    `max_batches` > 0 cuts epochs short (smoke runs)."""

    log_interval: int = 10
    max_batches: int = 0

    @classmethod
    def from_args(cls, args):
        return cls(log_interval=args.log_interval, max_batches=args.max_batches)


# ---- the batch loop of one epoch


class BatchSums(NamedTuple):
    """What one batch adds to its epoch: `loss` (checked for NaN/inf), the number of `items`, named
    0-dim float `values` to sum (the same names every batch) and `failed`, a 0-dim bool that stops the
    epoch with the loop's `failure` error (e.g. the ordinal box sampler could not draw a box)."""

    loss: torch.Tensor
    items: int
    values: dict
    failed: torch.Tensor | None = None


class EpochMeter:
    """Named running sums of per-batch values on the device, one stacked add per batch."""

    def __init__(self, device):
        self.device = device
        self.names, self.sums = None, None
        self.first_bad_batch = torch.full((), -1, device=device, dtype=torch.long)
        self.failed = torch.zeros((), device=device, dtype=torch.bool)
        self.batches = self.items = 0

    @torch.no_grad()
    def add(self, batch_index, batch):
        """Adds one batch's `BatchSums`; a non-finite loss marks the batch (reported by `check`)."""
        names = tuple(batch.values)
        if self.names is None:
            self.names, self.sums = names, torch.zeros(len(names), device=self.device, dtype=torch.float64)
        elif names != self.names:
            raise ValueError(f"batch values {names} differ from the epoch's {self.names}")
        self.sums += torch.stack(list(batch.values.values()))
        bad = ~torch.isfinite(batch.loss) & (self.first_bad_batch < 0)
        self.first_bad_batch = torch.where(bad, batch_index, self.first_bad_batch)
        if batch.failed is not None:
            self.failed |= batch.failed
        self.batches += 1
        self.items += batch.items

    def check(self, phase, epoch, failure=None):
        """Raises NonFiniteLoss, or `failure` (a UserError) when a batch `failed`, with one clear line (a host sync)."""
        bad = int(self.first_bad_batch)
        if bad >= 0:
            raise NonFiniteLoss(f"{phase} loss is not finite at epoch {epoch}, batch {bad}; stopping (checkpoints keep the last good state)")
        if bool(self.failed):
            raise failure

    def totals(self):
        """name -> sum over the epoch's batches, as floats; 0.0 for a name no batch added (an epoch
        whose batches were all skipped)."""
        return collections.defaultdict(float, zip(self.names, self.sums.tolist()) if self.names else ())

    def per_batch(self, name):
        """The running mean per batch of `name` (a host sync: for the progress bar)."""
        return self.sums[self.names.index(name)].item() / self.batches

    def percent_of_items(self, name):
        """100 x the running sum of `name` per item (a host sync: for the progress bar)."""
        return 100 * self.sums[self.names.index(name)].item() / self.items


def batches_taken(loader, loop):
    """How many of a loader's batches an epoch runs: all, or `loop.max_batches` if > 0."""
    return min(len(loader), loop.max_batches) if loop.max_batches else len(loader)


def iterate(loader, phase, epoch, loop):
    """Batches with a tqdm bar (phase and epoch in the description); stops after `loop.max_batches` if > 0."""
    total = batches_taken(loader, loop)
    on_a_terminal = sys.stdout.isatty() and sys.stderr.isatty()  # a log file gets the epoch lines, not the bar
    bar = tqdm(loader, desc=f"{phase} epoch {epoch}", total=total, leave=False, dynamic_ncols=True, disable=not on_a_terminal)
    for batch_index, batch in enumerate(bar):
        if batch_index >= total:
            break
        yield batch_index, batch, bar


def run_batches(loader, device, phase, epoch, loop, step, progress=None, failure=None):
    """The skeleton of every epoch: `step(images, targets)` -> BatchSums (or None to skip a batch) for
    each batch moved to `device`; checks (`failure`: the UserError of a batch that `failed`) and
    `progress(meter)` (the bar's postfix dict) every `loop.log_interval` batches. Returns the EpochMeter."""
    meter = EpochMeter(device)
    for batch_index, (images, targets), bar in iterate(loader, phase, epoch, loop):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        batch = step(images, targets)
        if batch is None:
            continue
        meter.add(batch_index, batch)
        if (batch_index + 1) % loop.log_interval == 0:
            meter.check(phase, epoch, failure)
            if progress is not None:
                bar.set_postfix(progress(meter))
    meter.check(phase, epoch, failure)
    return meter


def optimizer_step(optimizer, loss):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def make_optimizer(name, params, lr, weight_decay=0.0):
    """'SGD' (momentum 0.9, as the original, no weight decay), 'Adam' (with `weight_decay`) or 'RMS'
    (RMSprop, torch's defaults). The fused implementation updates all parameters in one op (the same
    update rule as the per-parameter loop); the foreach one where a torch build has no fused kernel."""
    params = [p for p in params if p.requires_grad]
    builders = {
        "SGD": lambda **kw: torch.optim.SGD(params, lr=lr, momentum=0.9, **kw),
        "Adam": lambda **kw: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kw),
        "RMS": lambda **kw: torch.optim.RMSprop(params, lr=lr, **kw),
    }
    build = builders[name]
    try:
        return build(fused=True)
    except (RuntimeError, TypeError, ValueError):
        return build(foreach=True)


def current_lr(optimizer):
    return optimizer.param_groups[0]["lr"]


# ---- the epoch loop of a run

# when a run writes its `last` checkpoint (CheckpointPolicy.last)
LAST_EVERY_EPOCH = "every epoch"
LAST_UNLESS_STOPPING = "every epoch but the one that stops the run"
LAST_AT_END = "once, after the last epoch"


@dataclass(frozen=True)
class CheckpointPolicy:
    """How a run chooses and writes its checkpoints: `best` on a strictly better `selection` metric;
    `last` as `last` says (one of the LAST_* rules: each script keeps its original's); the run stops
    after more than `patience` epochs without a better `selection`."""

    selection: str
    last: str
    patience: int

    def __post_init__(self):
        if self.last not in (LAST_EVERY_EPOCH, LAST_UNLESS_STOPPING, LAST_AT_END):
            raise ValueError(f"unknown rule for the last checkpoint: {self.last!r}")


class FitResult(NamedTuple):
    metrics: dict  # the last epoch's
    progress: dict  # {"best", "epochs_without_gain", ...}
    last_epoch: int | None  # None when no epoch ran (a resumed run that had ended)


def first_learning_rate(optimizers):
    """`learning rate`: the first optimiser's rate (read before the schedulers step)."""
    return {"learning rate": current_lr(next(opt for opt in optimizers.values() if opt is not None))}


def fit(ctx, run_epoch: Callable, policy: CheckpointPolicy, modules, optimizers, schedulers, save_best, save_last, line: EpochLine,
        after_epoch=None, learning_rates=first_learning_rate):
    """Runs epochs `start..--epochs-1` (start > 0 when resuming): `run_epoch(epoch, final)` -> metrics,
    where `final` says the epoch may be the run's last (the last of --epochs, or one after which the run
    stops unless it improves); the schedulers step after each epoch; `learning_rates(optimizers)` (read
    before they step) is added to the metrics, which are logged. `save_best(epoch, metrics)` on a
    strictly better `policy.selection`, `save_last(epoch, metrics)` as `policy.last` says and
    `after_epoch(epoch, metrics)` after every epoch but the one that stops the run; then the resume state,
    and one line: `line`'s figures (every figure with --log_all 1).
    """
    args, logger = ctx.args, ctx.logger
    record_selection(ctx.run_dir, policy.selection)
    start, progress = 0, {"best": float("-inf"), "epochs_without_gain": 0}
    if ctx.resume is not None:
        start, progress = apply_resume(ctx.resume, modules, optimizers, schedulers, ctx.generators)
        progress.setdefault("epochs_without_gain", 0)
        print(f"resumed after epoch {start - 1} (best {policy.selection} {progress['best']:.2f})")
    logger.drop_epochs_from(start)
    metrics, last_epoch, started = {}, None, time.perf_counter()
    with background_writes():  # checkpoints are written by a thread while the next epoch runs
        for epoch in range(start, args.epochs):
            if progress["epochs_without_gain"] > policy.patience:
                break
            epoch_started = time.perf_counter()
            rates = learning_rates(optimizers)
            final = epoch == args.epochs - 1 or progress["epochs_without_gain"] == policy.patience
            metrics = run_epoch(epoch, final)
            for scheduler in schedulers.values():
                if scheduler is not None:
                    scheduler.step()
            metrics.update(rates)
            logger.log(metrics, epoch)
            improved = metrics[policy.selection] > progress["best"]
            if improved:
                progress.update(best=metrics[policy.selection], epochs_without_gain=0)
                save_best(epoch, metrics)
            else:
                progress["epochs_without_gain"] += 1
            stopping = progress["epochs_without_gain"] > policy.patience
            if policy.last == LAST_EVERY_EPOCH or (policy.last == LAST_UNLESS_STOPPING and not stopping):
                save_last(epoch, metrics)
            if after_epoch is not None and not stopping:
                after_epoch(epoch, metrics)
            save_resume(ctx.run_dir, epoch, args, modules, optimizers, schedulers, ctx.generators, {**progress, "wandb_id": logger.run_id})
            if args.log_all:
                print(f"epoch {epoch:3d} | {format_metrics(metrics)}{' | best' if improved else ''}", flush=True)
            else:
                now = time.perf_counter()
                eta = (now - started) / (epoch + 1 - start) * (args.epochs - epoch - 1)
                print(epoch_line(epoch, args.epochs, metrics, policy.selection, improved, line, now - epoch_started, eta), flush=True)
            last_epoch = epoch
            if stopping:
                print(f"early stop: no gain in {policy.selection} for {progress['epochs_without_gain']} epochs")
    if last_epoch is None and start > 0:  # resumed with nothing left to train: the run had ended (or was killed while ending)
        last_epoch, metrics = start - 1, logged_metrics(logger, start - 1)
        reason = "early stop" if progress["epochs_without_gain"] > policy.patience else f"--epochs {args.epochs}"
        print(f"--resume 1: the run ended after epoch {last_epoch} ({reason}); nothing to train, its end is written again as it was")
    if policy.last == LAST_AT_END and last_epoch is not None and metrics:
        save_last(last_epoch, metrics)  # in the main thread: the run reads it next
    print(f"best {policy.selection} {progress['best']:.2f} (run folder {os.path.abspath(ctx.run_dir)})")
    return FitResult(metrics, progress, last_epoch)


def logged_metrics(logger, epoch):
    """The figures logged for training epoch `epoch` (its metrics.jsonl record), {} when there is none."""
    records = [record for record in read_records(logger.metrics_path) if record["epoch"] == epoch and "learning rate" in record]
    return {key: value for key, value in records[-1].items() if key != "epoch"} if records else {}


def report_summary(ctx, summary, step, heading):
    """The end-of-run figures: logged (metrics.jsonl, wandb), written to `<run>/summary.json`, printed."""
    ctx.logger.log(summary, step)
    write_json(os.path.join(ctx.run_dir, "summary.json"), summary)
    print(f"{heading}: {format_metrics(summary)}")
    return summary
