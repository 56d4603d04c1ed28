"""The epoch loop of the successor's scripts: resume, schedulers, logging, model selection on a
strictly better metric, early stopping after more than `--patience` epochs without one, and the
resume state after every epoch (a run killed at any moment continues with --resume 1)."""

import os

from utils.run.checkpoints import CheckpointError
from utils.run.files import write_json
from utils.run.logging import format_metrics
from utils.run.resume import apply_resume, save_resume
from utils.run.context import current_lr


def fit(ctx, run_epoch, selection, modules, optimizers, schedulers, on_best, after_epoch=None):
    """Runs epochs `start..--epochs-1`: `run_epoch(epoch)` -> metrics; the schedulers step after each
    epoch; `learning rate` is the first optimiser's rate before that step. `on_best(epoch, metrics)`
    on a strictly better `selection` metric; `after_epoch(epoch, metrics)` after every epoch except
    the one that stops the run (the original wrote `last.pth.tar` so).
    Returns (last metrics, progress {"best", "epochs_without_gain"}, last epoch or None)."""
    args, logger = ctx.args, ctx.logger
    start, progress = 0, {"best": float("-inf"), "epochs_without_gain": 0}
    if ctx.resume is not None:
        start, progress = apply_resume(ctx.resume, modules, optimizers, schedulers, ctx.generators)
        print(f"resumed after epoch {start - 1} (best {selection} {progress['best']:.2f})")
    logger.drop_epochs_from(start)
    metrics, last_epoch = {}, None
    first_optimizer = next(iter(optimizers.values()))
    for epoch in range(start, args.epochs):
        if progress["epochs_without_gain"] > args.patience:
            break
        rate = current_lr(first_optimizer)
        metrics = run_epoch(epoch)
        for scheduler in schedulers.values():
            scheduler.step()
        metrics["learning rate"] = rate
        logger.log(metrics, epoch)
        improved = metrics[selection] > progress["best"]
        if improved:
            progress.update(best=metrics[selection], epochs_without_gain=0)
            on_best(epoch, metrics)
        else:
            progress["epochs_without_gain"] += 1
        if after_epoch is not None and progress["epochs_without_gain"] <= args.patience:
            after_epoch(epoch, metrics)
        save_resume(ctx.run_dir, epoch, args, modules, optimizers, schedulers, ctx.generators, {**progress, "wandb_id": logger.run_id})
        print(f"epoch {epoch:3d} | {format_metrics(metrics)}{' | best' if improved else ''}", flush=True)
        last_epoch = epoch
        if progress["epochs_without_gain"] > args.patience:
            print(f"early stop: no gain in {selection} for {progress['epochs_without_gain']} epochs")
    print(f"best {selection} {progress['best']:.2f} (run folder {os.path.abspath(ctx.run_dir)})")
    return metrics, progress, last_epoch


def report_summary(ctx, summary, step, heading):
    """The end-of-run figures: logged (metrics.jsonl, wandb), written to `<run>/summary.json`, printed."""
    ctx.logger.log(summary, step)
    write_json(os.path.join(ctx.run_dir, "summary.json"), summary)
    print(f"{heading}: {format_metrics(summary)}")
    return summary


def resolve_checkpoint(path, saveroot, flag):
    """A checkpoint flag's path as given when it exists, else relative to --saveroot; None for ''."""
    if not path:
        return None
    for candidate in (path, os.path.join(saveroot, path)):
        if os.path.isfile(candidate):
            return candidate
    raise CheckpointError(f"{flag} {path}: not found (looked at {path} and {os.path.join(saveroot, path)})")
