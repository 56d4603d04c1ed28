"""utils/run/loop.py: the named sums of an epoch, the batch loop, and `fit` with each script's checkpoint policy."""

import argparse

import pytest
import torch

from utils.errors import NonFiniteLoss, SamplerError
from utils.run.logging import EpochLine, RunLogger
from utils.run.loop import (
    LAST_AT_END,
    LAST_EVERY_EPOCH,
    LAST_UNLESS_STOPPING,
    BatchSums,
    CheckpointPolicy,
    EpochMeter,
    LoopConfig,
    fit,
    run_batches,
)

LINE = EpochLine("Acc", train="Train Acc", test="Test Acc", loss="Train Loss")


def test_meter_adds_values_by_name():
    meter = EpochMeter("cpu")
    meter.add(0, BatchSums(torch.tensor(1.0), 4, {"loss": torch.tensor(1.0), "hits": torch.tensor(3.0)}))
    meter.add(1, BatchSums(torch.tensor(0.5), 2, {"loss": torch.tensor(0.5), "hits": torch.tensor(1.0)}))
    assert meter.totals() == {"loss": 1.5, "hits": 4.0} and meter.batches == 2 and meter.items == 6
    assert meter.per_batch("loss") == 0.75 and meter.percent_of_items("hits") == pytest.approx(100 * 4 / 6)
    with pytest.raises(ValueError, match="differ"):
        meter.add(2, BatchSums(torch.tensor(0.0), 1, {"hits": torch.tensor(0.0), "loss": torch.tensor(0.0), "more": torch.tensor(0.0)}))
    assert EpochMeter("cpu").totals()["anything"] == 0.0  # an epoch whose batches were all skipped sums to zeros


def test_batch_loop_checks_losses_and_failures():
    loader = [(torch.zeros(2, 1), torch.zeros(2, 4))] * 3
    losses = iter([1.0, float("nan"), 1.0])
    step = lambda images, targets: BatchSums(torch.tensor(next(losses)), len(images), {"loss": torch.tensor(1.0)})
    with pytest.raises(NonFiniteLoss, match="epoch 7, batch 1"):
        run_batches(loader, "cpu", "Train", 7, LoopConfig(log_interval=10), step)
    failing = lambda images, targets: BatchSums(torch.tensor(1.0), 2, {"loss": torch.tensor(1.0)}, failed=torch.tensor(True))
    with pytest.raises(SamplerError, match="no box"):
        run_batches(loader, "cpu", "Train", 0, LoopConfig(), failing, failure=SamplerError("no box"))
    skipped = run_batches(loader, "cpu", "Test", 0, LoopConfig(max_batches=2), lambda images, targets: None)
    assert skipped.batches == 0 and skipped.totals()["loss"] == 0.0


def fit_run(tmp_path, last, accuracies, epochs=None, patience=10, after_epoch=None):
    """`fit` over a fake run whose epoch i reports Test Acc accuracies[i] -> (saves [(kind, epoch)], result, printed lines)."""
    args = argparse.Namespace(epochs=epochs or len(accuracies), log_all=0, seed=0)
    ctx = argparse.Namespace(args=args, run_dir=str(tmp_path), resume=None, generators={},
                             logger=RunLogger(str(tmp_path), {}, "test", "disabled"))
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    saved, finals = [], []

    def run_epoch(epoch, final):
        finals.append(final)
        return {"Train Acc": 50.0, "Test Acc": accuracies[epoch], "Train Loss": 1.0}

    result = fit(ctx, run_epoch, CheckpointPolicy(selection="Test Acc", last=last, patience=patience), {"m": model}, {"m": optimizer},
                 {"m": None}, save_best=lambda epoch, metrics: saved.append(("best", epoch)),
                 save_last=lambda epoch, metrics: saved.append(("last", epoch)), line=LINE, after_epoch=after_epoch)
    return saved, result, finals


@pytest.mark.parametrize("rule, lasts", [(LAST_EVERY_EPOCH, [0, 1, 2, 3]), (LAST_UNLESS_STOPPING, [0, 1, 2]), (LAST_AT_END, [3])])
def test_each_rule_writes_last_when_it_says(tmp_path, rule, lasts):
    """Patience 1 with accuracies 10, 20, 15, 15: epoch 3 is the second without a gain, more than the patience: the run stops."""
    saved, result, finals = fit_run(tmp_path, rule, [10.0, 20.0, 15.0, 15.0, 99.0], epochs=5, patience=1)
    assert [epoch for kind, epoch in saved if kind == "best"] == [0, 1]
    assert [epoch for kind, epoch in saved if kind == "last"] == lasts
    assert result.last_epoch == 3 and result.progress["best"] == 20.0 and result.metrics["Test Acc"] == 15.0
    assert finals == [False, False, False, True]  # epoch 3 may end the run (patience reached before it)
    assert result.metrics["learning rate"] == 0.1


def test_after_epoch_skips_the_stopping_epoch(tmp_path):
    seen = []
    fit_run(tmp_path, LAST_AT_END, [10.0, 5.0, 5.0], patience=1, after_epoch=lambda epoch, metrics: seen.append(epoch))
    assert seen == [0, 1]


def test_fit_logs_every_epoch_and_records_the_selection(tmp_path, capsys):
    from utils.run.folder import read_owner
    from utils.run.logging import read_records

    fit_run(tmp_path, LAST_EVERY_EPOCH, [1.0, 2.0])
    records = read_records(str(tmp_path / "metrics.jsonl"))
    assert [record["epoch"] for record in records] == [0, 1] and records[1]["Test Acc"] == 2.0
    assert read_owner(str(tmp_path))["selection"] == "Test Acc"
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "Test Acc 2.00 best" in lines[1] and "ETA" in lines[1]


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown rule"):
        CheckpointPolicy(selection="Test Acc", last="sometimes", patience=1)
