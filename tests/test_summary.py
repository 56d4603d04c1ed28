"""tools/summary.py: the multi-run summary's statistics by hand and the wall time estimated from a wandb
folder (the summarize_runs.py tool itself runs in tests/e2e/test_tools.py)."""

import csv
import datetime
import os

import pytest
from conftest import write_joint_run

from tools.summary import summarize, wall_seconds


def test_summary_statistics_by_hand(tmp_path):
    runs = [str(tmp_path / f"run{k}") for k in range(3)]
    # test CorLoc at the checkpoint's epoch 1: 70, 74, 78 -> mean 74, sd 4, t(0.975, 2) = 4.302653
    write_joint_run(runs[0], [60, 70, 90], 1, cross={4: (70, 80), 7: (50, 52)}, wall_s=120)
    write_joint_run(runs[1], [60, 74, 10], 1, cross={4: (72, 80), 7: (60, 58)}, wall_s=240)
    write_joint_run(runs[2], [60, 78, 20], 1, cross={4: (74, 80)})
    os.makedirs(os.path.join(runs[2], "wandb", "offline-run-20260101_000000-xyz"))  # no resume.pth.tar: no estimate
    report, _ = summarize(runs, str(tmp_path / "s"))
    rows = {row["figure"]: row for row in csv.DictReader(open(tmp_path / "s.csv"))}
    at_best = rows["Test Loc Acc at the best checkpoint"]
    half = 4.302653 * 4 / 3**0.5
    assert float(at_best["mean"]) == pytest.approx(74) and float(at_best["sd"]) == pytest.approx(4)
    assert float(at_best["ci95_low"]) == pytest.approx(74 - half, abs=1e-4) and float(at_best["ci95_high"]) == pytest.approx(74 + half, abs=1e-4)
    assert float(rows["best Val Loc Acc (selection metric)"]["mean"]) == pytest.approx(75)
    assert float(rows["last Val Loc Acc"]["mean"]) == pytest.approx(41)  # 91, 11, 21
    assert float(rows["Test Loc Acc Greedy at the best checkpoint"]["mean"]) == pytest.approx(76)
    assert rows["wall time [min]"]["n"] == "2" and float(rows["wall time [min]"]["mean"]) == pytest.approx(3)
    assert float(rows["CorLoc of a random policy"]["mean"]) == 3.0 and rows["CorLoc of a random policy"]["sd"] == "0.0"
    assert float(rows["CorLoc sampled, --evaluate 1 of the best pair"]["mean"]) == 50.0
    assert "held-out validation split" in report and "| 74.00 ± 4.00 | [64.06, 83.94] |" in report
    cross = {(row["digit"], row["column"]): row for row in csv.DictReader(open(tmp_path / "s_cross_digit.csv"))}
    assert cross[("4", "CorLoc sampled")]["n"] == "3" and float(cross[("4", "CorLoc sampled")]["mean"]) == pytest.approx(72)
    assert cross[("7", "CorLoc greedy")]["n"] == "2" and float(cross[("7", "CorLoc greedy")]["mean"]) == pytest.approx(55)
    assert "| 4 | yes | 3 | 72.00 ± 2.00 | 80.00 ± 0.00 |" in report


def test_wall_time_estimate_from_wandb_folder(tmp_path):
    run_dir = tmp_path / "run"
    write_joint_run(str(run_dir), [60, 70], 1)
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for offset, name in ((0, "offline-run-20260101_120000-abc"), (900, "run-20260101_121500-def"), (0, "latest-run")):
        (run_dir / "wandb" / name).mkdir(parents=True)
    (run_dir / "resume.pth.tar").write_bytes(b"x")
    end = start.timestamp() + 600
    os.utime(run_dir / "resume.pth.tar", (end, end))
    assert wall_seconds(str(run_dir)) == (pytest.approx(600), "wandb")
    report, _ = summarize([str(run_dir)])
    assert "| wall time [min] | 1 | 10.0 |" in report and "1 estimated from the wandb folder" in report
