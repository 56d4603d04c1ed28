"""Runs of ordinal-pretrain-cluttermnist-scale.py and train-joint.py that survive: bad flags and data,
checkpoint errors, determinism, resume after SIGKILL, SIGTERM, Ctrl-C, non-finite losses, sampler failures
and out of memory, each ending in one line."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, load_script, read_metrics, write_synthetic_split

import utils.method2021.epochs as epochs
from models import Net
from utils.run.checkpoints import load_checkpoint, load_weights, save_checkpoint

pytestmark = pytest.mark.slow


PRETRAIN = "ordinal-pretrain-cluttermnist-scale.py"


JOINT = "train-joint.py"


# --device cpu: tests that compare runs bit for bit run on the CPU (CUDA's RoIAlign backward adds
# atomically); tests/test_cuda.py covers CUDA, with --deterministic 1 where it compares runs.
FAST = ["--pooling_size", "3", "--batch_size", "32", "--wandb_mode", "disabled", "--device", "cpu"]


def run_main(script, argv, capsys):
    """Calls a script's main() in-process; returns (exit code, stderr). Any other exception fails the test."""
    with pytest.raises(SystemExit) as stop:
        load_script(script).main(argv)
    return stop.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--digit", "12"], "--digit must be in 0..9"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--batch_size", "0"], "--batch_size must be >= 1"),
        (["--pooling_size", "-1"], "--pooling_size must be >= 1"),
        (["--seq_len", "0"], "--seq_len must be >= 1"),
        (["--num_act", "11"], "--num_act must be in 2..10"),
        (["--pooling_mode", "max"], "invalid choice: 'max'"),
        (["--val_split", "1.5"], "--val_split must be in [0, 1)"),
        (["--lr", "nan"], "--lr must be a finite number > 0"),
        (["--lr", "inf"], "--lr must be a finite number > 0"),
        (["--lr_ag", "NaN"], "--lr_ag must be a finite number > 0"),
        (["--margin", "-1"], "--margin must be a finite number >= 0"),
        (["--seed", "-1"], "--seed must be in 0..4294967295"),
        (["--seed", str(2**70)], "--seed must be in 0..4294967295"),
        (["--min_box_side", "85"], "--min_box_side must be at most the image side 84"),
        (["--min_box_side", "1"], "--min_box_side must be in 2..84"),
        (["--pooling_size", "100000"], "--pooling_size must be at most the image side 84"),
        (["--overwrite", "1", "--resume", "1"], "--overwrite 1 replaces a run"),
        (["--overwrite", "1", "--evaluate", "1"], "--overwrite 1 replaces a run"),
    ],
)
def test_bad_flags_exit_with_one_line(flags, message, capsys, tmp_path):
    for script in (PRETRAIN, JOINT):
        code, err = run_main(script, ["--saveroot", str(tmp_path), *flags], capsys)
        assert code == 2 and message in err and "Traceback" not in err


def test_missing_and_malformed_data(tmp_path, capsys):
    code, err = run_main(PRETRAIN, ["--datapath", str(tmp_path / "none"), "--saveroot", str(tmp_path), *FAST], capsys)
    assert code == 1 and "missing data file" in err and "python clutter_mnist_scale.py" in err
    write_synthetic_split(str(tmp_path / "d"), 4, "train", 8)
    folder = tmp_path / "d" / "test" / "moreclutter"
    folder.mkdir(parents=True)
    np.save(folder / "4_moreclutter_data.npy", np.zeros((5, 84, 84), np.uint8))
    np.save(folder / "4_moreclutter_label.npy", np.zeros((4, 4)))
    code, err = run_main(JOINT, ["--datapath", str(tmp_path / "d"), "--saveroot", str(tmp_path), *FAST], capsys)
    assert code == 1 and "malformed data for digit 4 (test)" in err


@pytest.mark.parametrize("script", [PRETRAIN, JOINT])
@pytest.mark.parametrize("label, problem", [([np.nan, 3, 28, 28], "is not finite"), ([70, 3, 28, 28], "ends outside the image")])
def test_bad_labels_stop_at_load_with_one_line(script, label, problem, tmp_path, capsys):
    """Pretraining used to hang on such labels (box sampling never succeeds), joint training to segfault."""
    datapath = str(tmp_path / "d")
    write_synthetic_split(datapath, 4, "train", 8)
    write_synthetic_split(datapath, 4, "test", 8)
    label_path = os.path.join(datapath, "train", "moreclutter", "4_moreclutter_label.npy")
    labels = np.load(label_path).astype(np.float64)
    labels[2] = label
    np.save(label_path, labels)
    code, err = run_main(script, ["--datapath", datapath, "--saveroot", str(tmp_path), *FAST], capsys)
    assert code == 1 and err.count("\n") == 1 and f"{label_path}: row 2," in err and problem in err


@pytest.mark.parametrize("script, split", [(PRETRAIN, "train"), (PRETRAIN, "test"), (JOINT, "train"), (JOINT, "test")])
def test_empty_split_stops_with_one_line(script, split, tmp_path, capsys):
    datapath = str(tmp_path / "d")
    for each in ("train", "test"):
        write_synthetic_split(datapath, 4, each, 0 if each == split else 8)
    code, err = run_main(script, ["--datapath", datapath, "--saveroot", str(tmp_path), *FAST], capsys)
    assert code == 1 and f"{split}/moreclutter/4_moreclutter_data.npy holds no images" in err


def test_pretrained_with_other_pooling_mode_is_refused(synthetic_data, tmp_path, capsys):
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", "--max_batches", "1", *FAST]
    load_script(PRETRAIN).main([*common, "--savename", "pre", "--pooling_mode", "align"])
    best = str(tmp_path / "pre" / "best.pth.tar")
    state = torch.load(best, weights_only=True)
    assert state["pooling_mode"] == "align" and state["pooling_size"] == 3
    code, err = run_main(JOINT, [*common, "--pretrained", "pre/best.pth.tar", "--pooling_mode", "pool"], capsys)
    assert code == 1 and "was trained with --pooling_mode align; this run has --pooling_mode pool" in err
    original = {key: state[key] for key in ("epoch", "state_dict", "acc")}  # the original's checkpoints lack the key
    torch.save(original, str(tmp_path / "original.pth.tar"))
    assert load_weights(Net(3, "pool"), str(tmp_path / "original.pth.tar"), "net")["epoch"] == 0


def test_ctrl_c_while_the_script_starts_gives_one_line(synthetic_data, tmp_path):
    proc = subprocess.Popen(joint_command(synthetic_data, str(tmp_path), "early"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # torch is still loading
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err


def test_checkpoint_errors(synthetic_data, tmp_path, capsys):
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", *FAST]
    code, err = run_main(JOINT, [*common, "--pretrained", "nope/best.pth.tar"], capsys)
    assert code == 1 and "--pretrained nope/best.pth.tar: not found" in err
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"\x00\x01 not a checkpoint" * 10)
    code, err = run_main(JOINT, [*common, "--pretrained", str(garbage)], capsys)
    assert code == 1 and "corrupt, truncated or not a checkpoint" in err
    good = tmp_path / "good.pth.tar"
    save_checkpoint({"epoch": 0, "state_dict": Net(pooling_size=5).state_dict(), "acc": 50.0}, str(good))
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    code, err = run_main(JOINT, [*common, "--pretrained", str(truncated)], capsys)
    assert code == 1 and "corrupt, truncated or not a checkpoint" in err
    code, err = run_main(JOINT, [*common, "--pretrained", str(good)], capsys)  # trained with --pooling_size 5, run uses 3
    assert code == 1 and "does not fit this net" in err and "--pooling_size" in err
    code, err = run_main(JOINT, [*common, "--savename", "never_trained", "--evaluate", "1"], capsys)
    assert code == 1 and "--evaluate: there is no run in" in err and not (tmp_path / "never_trained").exists()
    save_checkpoint({"epoch": 0}, str(tmp_path / "never_trained" / "resume.pth.tar"))  # a run killed before a best pair
    code, err = run_main(JOINT, [*common, "--savename", "never_trained", "--evaluate", "1"], capsys)
    assert code == 1 and "checkpoint not found" in err and "best_net.pth.tar" in err


def test_unwritable_output_folder(synthetic_data, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    code, err = run_main(PRETRAIN, ["--datapath", synthetic_data, "--saveroot", str(blocker), *FAST], capsys)
    assert code == 1 and "cannot write to the run folder" in err


def test_wandb_failure_falls_back_to_offline(synthetic_data, tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, so no API key
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    flags = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", "--max_batches", "1"]
    load_script(PRETRAIN).main([*flags, "--pooling_size", "3", "--batch_size", "32", "--wandb_mode", "online"])
    err = capsys.readouterr().err
    assert "wandb online failed; logging offline instead" in err
    assert os.path.isdir(tmp_path / "cluttermnist_pretrain" / "wandb")


def test_seeded_runs_are_identical_and_resume_matches(synthetic_data, tmp_path):
    """Two seeded CPU runs log identical metrics; 2 epochs + resume to 4 equals 4 straight epochs."""
    pretrain = load_script(PRETRAIN)
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--seed", "3", "--optimizer", "SGD", *FAST]
    pretrain.main([*common, "--savename", "a", "--epochs", "4"])
    pretrain.main([*common, "--savename", "b", "--epochs", "4"])
    pretrain.main([*common, "--savename", "c", "--epochs", "2"])
    pretrain.main([*common, "--savename", "c", "--epochs", "4", "--resume", "1"])
    a, b, c = (read_metrics(str(tmp_path / name)) for name in "abc")
    assert a == b == c and len(a) == 4
    for name in ("best.pth.tar", "last.pth.tar"):
        sa, sc = (torch.load(str(tmp_path / run / name), weights_only=True) for run in "ac")
        assert sa["epoch"] == sc["epoch"] and all(torch.equal(sa["state_dict"][k], sc["state_dict"][k]) for k in sa["state_dict"])


def test_resume_refuses_other_flags(synthetic_data, tmp_path, capsys):
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", "--max_batches", "1"]
    load_script(PRETRAIN).main([*common, *FAST])
    code, err = run_main(PRETRAIN, [*common, "--resume", "1", "--pooling_size", "4", "--batch_size", "32", "--wandb_mode", "disabled"], capsys)
    assert code == 1 and "--pooling_size 3 -> 4" in err


def test_resume_of_a_state_without_progress_is_one_line(synthetic_data, tmp_path, capsys):
    """A resume.pth.tar whose progress record is empty: one line naming the file and how to start afresh."""
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", "--max_batches", "1", "--wandb_mode", "disabled"]
    load_script(PRETRAIN).main([*common, *FAST])
    path = os.path.join(str(tmp_path), "cluttermnist_pretrain", "resume.pth.tar")
    state = torch.load(path, weights_only=False)
    state["progress"] = {}
    torch.save(state, path)
    code, err = run_main(PRETRAIN, [*common, *FAST, "--resume", "1"], capsys)
    assert code == 1 and path in err and "--overwrite 1" in err and "Traceback" not in err and "KeyError" not in err


def joint_command(datapath, saveroot, savename, *extra):
    return [sys.executable, os.path.join(ROOT, JOINT), "--datapath", datapath, "--saveroot", saveroot, "--savename", savename,
            "--seq_len", "4", "--hidden_size", "8", "--num_act", "10", "--freeze", "0", "--epochs", "5", "--seed", "7", *FAST, *extra]


CUDA_DETERMINISTIC = pytest.param(["--device", "cuda", "--deterministic", "1"], id="cuda-deterministic",
                                   marks=[pytest.mark.cuda,
                                          pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")])


@pytest.mark.parametrize("device_flags", [pytest.param([], id="cpu"), CUDA_DETERMINISTIC])
def test_sigkill_mid_run_then_resume_matches_uninterrupted(synthetic_data, tmp_path, device_flags):
    saveroot = str(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(joint_command(synthetic_data, saveroot, "straight", *device_flags), check=True, capture_output=True, env=env)
    victim = subprocess.Popen(joint_command(synthetic_data, saveroot, "killed", *device_flags), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)
    resume_file = os.path.join(saveroot, "killed", "resume.pth.tar")
    deadline = time.time() + 120
    while time.time() < deadline and victim.poll() is None:
        if os.path.isfile(resume_file) and load_checkpoint(resume_file, ("epoch",))["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = load_checkpoint(resume_file, ("epoch",))["epoch"]
    assert killed_at < 4
    done = subprocess.run(joint_command(synthetic_data, saveroot, "killed", *device_flags, "--resume", "1"), capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert f"resumed after epoch {killed_at}" in done.stdout
    assert read_metrics(os.path.join(saveroot, "straight")) == read_metrics(os.path.join(saveroot, "killed"))
    for name in ("last_net.pth.tar", "last_agent.pth.tar", "best_net.pth.tar", "best_agent.pth.tar"):
        s, k = (torch.load(os.path.join(saveroot, run, name), weights_only=True) for run in ("straight", "killed"))
        assert s["epoch"] == k["epoch"] and s["acc"] == k["acc"]
        assert all(torch.equal(s["state_dict"][key], k["state_dict"][key]) for key in s["state_dict"])


def test_sigterm_saves_and_exits_cleanly(synthetic_data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(joint_command(synthetic_data, str(tmp_path), "term", "--epochs", "200"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    resume_file = tmp_path / "term" / "resume.pth.tar"
    deadline = time.time() + 120
    while not resume_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "--resume 1" in err and "Traceback" not in err
    assert load_checkpoint(str(resume_file), ("epoch",))["epoch"] >= 0


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_data, tmp_path, capsys):
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--optimizer", "SGD", "--margin", "60", *FAST]
    load_script(PRETRAIN).main([*common, "--epochs", "1"])
    best = str(tmp_path / "cluttermnist_pretrain" / "best.pth.tar")
    before = open(best, "rb").read()
    code, err = run_main(PRETRAIN, [*common, "--epochs", "2", "--lr", "1e30", "--overwrite", "1"], capsys)
    assert code == 1 and "loss is not finite at epoch 0, batch" in err and "Traceback" not in err
    assert open(best, "rb").read() == before  # the replaced run is moved back: the failed one wrote nothing
    assert sorted(os.listdir(tmp_path)) == ["cluttermnist_pretrain", "data"]


def test_sampler_failure_stops_with_one_line(synthetic_data, tmp_path, capsys, monkeypatch):
    """A box the ordinal sampler cannot draw (SamplerError, a UserError) ends the run in one line, exit 1."""
    real_draw = epochs.draw_ordinal_boxes

    def failing_draw(gt, num=2, generator=None):  # as if a box of every batch found no candidate
        boxes, ious, _ = real_draw(gt, num, generator)
        return boxes, ious, torch.ones((), dtype=torch.bool)

    monkeypatch.setattr(epochs, "draw_ordinal_boxes", failing_draw)
    code, err = run_main(PRETRAIN, ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", *FAST], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: the ordinal box sampler found no box") and "Traceback" not in err


def test_diverging_agent_stops_with_one_line(synthetic_data, tmp_path, capsys):
    """SGD at --lr_ag 1e30 drives the agent's logits to inf/NaN: the run stops at the non-finite check (the
    sampler neither syncs nor raises on NaN logits), never with a traceback from inside torch."""
    argv = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--seq_len", "4", "--hidden_size", "8", "--num_act", "10",
            "--optimizer_ag", "SGD", "--lr_ag", "1e30", "--epochs", "4", "--log_interval", "1", *FAST]
    code, err = run_main(JOINT, argv, capsys)
    assert code == 1 and "loss is not finite at epoch" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_out_of_memory_gives_one_line(tmp_path, capsys, monkeypatch):
    script = load_script(PRETRAIN)

    def allocate(args, run_dir):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")

    monkeypatch.setattr(script, "run", allocate)
    with pytest.raises(SystemExit) as stop:
        script.main(["--saveroot", str(tmp_path), *FAST])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and err.startswith("error: out of memory (") and "smaller --batch_size" in err
    monkeypatch.setattr(script, "run", lambda args, run_dir: 1 / 0)  # a bug stays a traceback
    with pytest.raises(ZeroDivisionError):
        script.main(["--saveroot", str(tmp_path), *FAST])
