"""Evaluation runs of train-joint.py and ordinal-pretrain-cluttermnist-scale.py: --eval_digits without data,
--reward iou, checkpoint selection on --val_split."""

import json
import os

import numpy as np
import pytest
import torch
from conftest import load_script

pytestmark = pytest.mark.slow


FAST = ["--pooling_size", "3", "--batch_size", "32", "--wandb_mode", "disabled"]


def test_eval_digit_without_files_names_the_command(synthetic_data, tmp_path, capsys):
    joint = load_script("train-joint.py")
    flags = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", "--seq_len", "3", "--max_batches", "1", *FAST]
    joint.main(flags)
    with pytest.raises(SystemExit) as stop:
        joint.main([*flags, "--evaluate", "1", "--eval_digits", "4", "8"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "8_moreclutter_data.npy" in err and "clutter_mnist_scale.py" in err and "--digits 8" in err


def test_reward_iou_trains(synthetic_data, tmp_path):
    joint = load_script("train-joint.py")
    metrics = joint.main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--reward", "iou", "--epochs", "2",
                          "--seq_len", "4", "--num_act", "10", "--hidden_size", "8", *FAST])
    assert np.isfinite(metrics["Train Pol Loss"]) and np.isfinite(metrics["Test Loc Acc"])
    # IoU gains summed over an episode are at most 1 - IoU of the first box
    assert abs(metrics["Train Rewards"]) <= 1.0
    assert os.path.isfile(tmp_path / "cluttermnist_joint" / "best_agent.pth.tar")


def test_val_split_selects_on_validation(synthetic_data, tmp_path):
    pretrain = load_script("ordinal-pretrain-cluttermnist-scale.py")
    pretrain.main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--val_split", "0.25", "--epochs", "3", *FAST])
    run_dir = tmp_path / "cluttermnist_pretrain"
    records = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    best = torch.load(run_dir / "best.pth.tar", weights_only=True)
    assert best["acc"] == max(r["Val Ord Acc Inst"] for r in records)
    assert all("Test Ord Acc Inst" in r for r in records)
