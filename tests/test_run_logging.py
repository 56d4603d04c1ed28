"""utils/run/logging.py: RunLogger's metrics.jsonl tolerates torn lines and is rewritten atomically."""

import errno
import os

import pytest

from utils.run.logging import RunLogger


def test_metrics_file_tolerates_torn_lines_and_is_rewritten_atomically(tmp_path, monkeypatch):
    logger = RunLogger(str(tmp_path), {}, "p", mode="disabled")
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0, "a": 1.0}\n{"epoch": 1, "a": 2.0}\n{"epoch": 2, "a')
    logger.log({"a": 3.0}, 2)  # a record after a torn one starts on its own line
    assert (tmp_path / "metrics.jsonl").read_text().splitlines()[-1] == '{"epoch": 2, "a": 3.0}'

    def full_disk(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr("utils.run.logging.write_atomically", full_disk)
    with pytest.raises(OSError):
        logger.drop_epochs_from(1)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4  # a failed rewrite changes nothing
    monkeypatch.undo()
    logger.drop_epochs_from(1)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 0, "a": 1.0}\n'
    assert os.listdir(tmp_path) == ["metrics.jsonl"]


def test_epoch_line_is_short_and_says_what_matters():
    from utils.run.logging import EpochLine, duration, epoch_line, number

    line = EpochLine("CorLoc", train="Train Loc Acc", test="Test Loc Acc", loss="Train Pol Loss")
    metrics = {"Train Loc Acc": 91.2345, "Test Loc Acc": 100.0, "Val Loc Acc": 93.4137, "Train Pol Loss": -13170.55, "learning rate": 0.0019125,
               "Test Ord Loss": 35.7}
    text = epoch_line(123, 250, metrics, "Val Loc Acc", True, line, 20.3, 2 * 3600 + 14 * 60)
    assert text == ("epoch 123 of 250 | Val Loc Acc 93.41 best | CorLoc train 91.23 test 100.00 | loss -1.317e+04 | lr 0.00191 | "
                    "20.3 s | ETA 2h 14m")
    assert len(text) <= 150 and "Ord Loss" not in text
    assert epoch_line(0, 5, {}, "Test Loc Acc", False, line, 1.0, 59).startswith("epoch 0 of 5 | Test Loc Acc - | CorLoc train - test -")
    assert [number(v) for v in (0.0, 0.1234, 0.001234, 2249.9, 93.411, float("nan"))] == ["0", "0.1234", "0.001234", "2250", "93.41", "-"]
    assert [duration(s) for s in (42.4, 185, 8040)] == ["42 s", "3m 05s", "2h 14m"]


def test_wandb_start_is_bounded(monkeypatch):
    """A logged-in user without network waits at most $WANDB_INIT_TIMEOUT seconds (default 10, not wandb's 90)."""
    wandb = pytest.importorskip("wandb")
    from utils.run.logging import WANDB_INIT_TIMEOUT_S, wandb_settings

    monkeypatch.delenv("WANDB_INIT_TIMEOUT", raising=False)
    assert wandb_settings(wandb).init_timeout == WANDB_INIT_TIMEOUT_S == 10.0
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "2.5")
    assert wandb_settings(wandb).init_timeout == 2.5 and wandb_settings(wandb).console == "off"


def test_a_wandb_failure_never_stops_the_run(tmp_path, capsys):
    class BrokenRun:
        id = "abc"

        def log(self, *args, **kwargs):
            raise OSError("[Errno 30] Read-only file system: '/home/user/.cache/wandb'")

        def finish(self):
            raise AssertionError("finish must not be called on a run already turned off")

    pytest.importorskip("wandb")
    logger = RunLogger(str(tmp_path), {}, "p", mode="disabled")
    logger.run, logger.mode = BrokenRun(), "offline"
    logger.log({"Test Loc Acc": 50.0}, 0)
    logger.log({"Test Loc Acc": 60.0}, 1)
    logger.finish()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wandb failed (" in err[0] and "Read-only file system" in err[0]
    assert logger.mode == "disabled" and (tmp_path / "metrics.jsonl").read_text().count("Test Loc Acc") == 2
