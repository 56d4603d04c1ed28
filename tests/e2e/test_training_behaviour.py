"""train-joint.py and ordinal-pretrain-cluttermnist-scale.py runs: what a joint run does and logs, as the
original: early stopping, metric meanings, learning rates; evaluation streams that leave training alone;
the bf16 path and --deterministic 1 on the CPU."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT, load_script, read_metrics

pytestmark = pytest.mark.slow


JOINT, PRETRAIN = "train-joint.py", "ordinal-pretrain-cluttermnist-scale.py"


TINY = ["--pooling_size", "3", "--batch_size", "32", "--wandb_mode", "disabled", "--device", "cpu", "--num_act", "10",
        "--hidden_size", "8", "--seed", "4"]


def test_greedy_evaluation_leaves_the_training_trajectory_unchanged(synthetic_data, tmp_path):
    joint = load_script(JOINT)
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--seq_len", "4", "--freeze", "0", "--epochs", "3", *TINY]
    joint.main([*common, "--savename", "plain"])
    joint.main([*common, "--savename", "greedy", "--greedy", "1"])
    plain, greedy = read_metrics(str(tmp_path / "plain")), read_metrics(str(tmp_path / "greedy"))
    for a, b in zip(plain, greedy):
        train = {k: v for k, v in a.items() if k.startswith("Train")}
        assert train == {k: b[k] for k in train}
        assert a["Test Loc Acc"] == b["Test Loc Acc"] and "Test Loc Acc Greedy" in b
        assert a == {k: v for k, v in b.items() if "Greedy" not in k}  # no other figure moves either


def test_joint_training_stops_early_after_patience(synthetic_data, tmp_path):
    """One step from the whole image never reaches IoU 0.5 on a 28x28 digit, so Test Loc Acc stays 0,
    never strictly better than epoch 0's: with --patience 1 the run stops after epoch 2."""
    metrics = load_script(JOINT).main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--seq_len", "1", "--epochs", "10",
                                       "--patience", "1", *TINY])
    logged = read_metrics(str(tmp_path / "cluttermnist_joint"))
    assert [r["epoch"] for r in logged] == [0, 1, 2] and metrics["Test Loc Acc"] == 0.0


def test_logged_metrics_have_the_original_meanings(synthetic_data, tmp_path):
    """`learning rate` is the agent's (read before the scheduler steps), the net's has its own name and
    stays constant without --steps; `Rewards` is the mean step reward, `Episode Return` its sum per image."""
    load_script(JOINT).main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--seq_len", "5", "--freeze", "0",
                             "--epochs", "3", "--lr_ag", "0.002", "--lr", "0.003", "--step_ag", "2", "--max_batches", "1", *TINY])
    logged = read_metrics(str(tmp_path / "cluttermnist_joint"))
    assert [r["learning rate"] for r in logged] == pytest.approx([0.002, 0.002, 0.0002])
    assert [r["learning rate net"] for r in logged] == pytest.approx([0.003] * 3)
    for r in logged:  # one batch of 32 images: the return is T = 5 times the mean step reward
        assert r["Train Episode Return"] == pytest.approx(5 * r["Train Rewards"], rel=1e-5, abs=1e-6)
        assert r["Train Pol+Ent Loss"] == pytest.approx(r["Train Pol Loss"] - 1.0 * r["Train Ent Loss"], rel=1e-4, abs=1e-3)


def test_bf16_autocast_runs_on_the_cpu(synthetic_data, tmp_path):
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--amp", "bf16", "--epochs", "1", "--margin", "60", *TINY]
    pre = load_script(PRETRAIN).main([*common, "--savename", "pre"])
    joint = load_script(JOINT).main([*common, "--savename", "joint", "--seq_len", "4", "--freeze", "0", "--pretrained", "pre/best.pth.tar"])
    for value in (*pre.values(), *joint.values()):
        if isinstance(value, float):
            assert value == value and abs(value) != float("inf")


def test_deterministic_flag_runs_and_repeats_on_the_cpu(synthetic_data, tmp_path):
    """--deterministic 1 (in fresh processes: it switches global torch settings) runs on a CPU-only
    machine and two seeded runs log the same metrics."""
    for name in ("a", "b"):
        command = [sys.executable, os.path.join(ROOT, PRETRAIN), "--datapath", synthetic_data, "--saveroot", str(tmp_path),
                   "--savename", name, "--epochs", "2", "--deterministic", "1", *TINY]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert read_metrics(str(tmp_path / "a")) == read_metrics(str(tmp_path / "b"))
