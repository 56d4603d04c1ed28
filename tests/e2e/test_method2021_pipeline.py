"""End to end on the bundled real digits, in-process: clutter_mnist_scale.py (the bundled_digits fixture) ->
ordinal-pretrain-cluttermnist-scale.py -> train-joint.py -> --evaluate 1 of both."""

import json
import os

import pytest
import torch
from conftest import load_script

pytestmark = pytest.mark.slow


PRETRAIN_METRICS = ["Train Total Loss", "Train Ord Acc Inst", "Train Ord Acc Proto", "learning rate",
                    "Test Total Loss", "Test Ord Acc Inst", "Test Ord Acc Proto"]


JOINT_METRICS = [f"{phase} {name}" for phase in ("Train", "Test") for name in
                 ("Pol Loss", "Ord Loss", "Rewards", "Loc Acc", "Ent Loss", "Ord Acc Inst", "Ord Acc Proto", "IoU Distribution Figure")]


JOINT_METRICS.append("learning rate")


COMMON = ["--pooling_size", "5", "--margin", "60", "--batch_size", "64", "--wandb_mode", "disabled"]


def read_records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as stream:
        return [json.loads(line) for line in stream]


@pytest.fixture(scope="module")
def pretrained_run(bundled_digits, tmp_path_factory):
    saveroot = str(tmp_path_factory.mktemp("results"))
    pretrain = load_script("ordinal-pretrain-cluttermnist-scale.py")
    pretrain.main(["--datapath", bundled_digits, "--saveroot", saveroot, "--savename", "pre", "--epochs", "8",
                   "--optimizer", "SGD", "--lr", "0.0019125313967198946", "--step", "25", *COMMON])
    return bundled_digits, saveroot


def test_pretraining_learns_and_logs_every_metric(pretrained_run):
    _, saveroot = pretrained_run
    records = read_records(os.path.join(saveroot, "pre"))
    assert len(records) == 8
    for name in PRETRAIN_METRICS:
        assert all(name in record for record in records), name
    best = max(record["Test Ord Acc Inst"] for record in records)
    assert best > 75.0  # chance is 50%
    checkpoint = torch.load(os.path.join(saveroot, "pre", "best.pth.tar"), weights_only=True)
    assert set(checkpoint) >= {"epoch", "state_dict", "acc"} and checkpoint["acc"] == best


def test_pretrain_evaluate_reports_saved_best(pretrained_run, capsys):
    datapath, saveroot = pretrained_run
    pretrain = load_script("ordinal-pretrain-cluttermnist-scale.py")
    metrics = pretrain.main(["--datapath", datapath, "--saveroot", saveroot, "--savename", "pre", "--evaluate", "1", *COMMON])
    assert set(metrics) == {"Train Total Loss", "Train Ord Acc Inst", "Train Ord Acc Proto", "Test Total Loss",
                            "Test Ord Acc Inst", "Test Ord Acc Proto", "Test Spearman Distance IoU", "Test Distance vs IoU",
                            "Test Embedding PCA"}
    assert metrics["Test Ord Acc Inst"] > 65.0
    assert metrics["Test Spearman Distance IoU"] < -0.2  # farther from the ground truth in IoU, farther in embedding
    assert os.path.isfile(metrics["Test Distance vs IoU"]) and os.path.isfile(metrics["Test Embedding PCA"])
    assert "evaluate best.pth.tar" in capsys.readouterr().out


def test_joint_training_end_to_end(pretrained_run, capsys):
    datapath, saveroot = pretrained_run
    joint = load_script("train-joint.py")
    flags = ["--datapath", datapath, "--saveroot", saveroot, "--savename", "joint", "--seq_len", "4", "--hidden_size", "16",
             "--num_act", "10", "--freeze", "0", "--optimizer", "SGD", "--lamb_ent", "5", *COMMON]
    joint.main([*flags, "--pretrained", "pre/best.pth.tar", "--epochs", "2", "--greedy", "1"])
    run_dir = os.path.join(saveroot, "joint")
    for kind in ("best", "last"):
        for model in ("net", "agent"):
            state = torch.load(os.path.join(run_dir, f"{kind}_{model}.pth.tar"), weights_only=True)
            assert set(state) >= {"epoch", "state_dict", "acc"}
    records = read_records(run_dir)
    assert len(records) == 2
    for name in JOINT_METRICS + ["Test Loc Acc Greedy"]:
        assert name in records[-1], name
    assert os.path.isfile(records[-1]["Test IoU Distribution Figure"])  # drawn at the last epoch
    metrics = joint.main([*flags, "--evaluate", "1", "--eval_digits", "4", "7", "--visualize", "3"])
    assert 0.0 <= metrics["Test Loc Acc"] <= 100.0 and metrics["Test CorLoc whole image"] == 0.0
    out = capsys.readouterr().out
    assert "Test Loc Acc (CorLoc), digit 4" in out and "random policy" in out
    for name in ("cross_digit.csv", "cross_digit.md", "trajectories.png"):
        assert os.path.isfile(os.path.join(run_dir, name))
    with open(os.path.join(run_dir, "cross_digit.csv")) as stream:
        lines = stream.read().splitlines()
    assert lines[1].startswith("4,yes,100,") and lines[2].startswith("7,,100,")


def test_frozen_net_is_not_updated(pretrained_run):
    datapath, saveroot = pretrained_run
    joint = load_script("train-joint.py")
    joint.main(["--datapath", datapath, "--saveroot", saveroot, "--savename", "frozen", "--pretrained",
                os.path.join(saveroot, "pre", "best.pth.tar"), "--seq_len", "3", "--epochs", "1", "--freeze", "1",
                "--num_act", "10", "--max_batches", "2", *COMMON])
    before = torch.load(os.path.join(saveroot, "pre", "best.pth.tar"), weights_only=True)["state_dict"]
    after = torch.load(os.path.join(saveroot, "frozen", "last_net.pth.tar"), weights_only=True)["state_dict"]
    assert all(torch.equal(before[key], after[key]) for key in before)
