"""The six real-image scripts (scripts/{cub,coco}_{pretrain,agent,adapt}.sh and the CUB adaptation grid) for
one tiny epoch each on tiny CUB and COCO folders in their native formats, with random VGG16 weights; resume
after kill -9; and the flag and data errors, each one line with nothing written."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, load_script, read_metrics
from real_folders import make_coco, make_cub
from models import VGGRoIEncoder
from tools import adaptation_table
from utils.run.checkpoints import load_checkpoint, model_checkpoint, save_checkpoint

TINY = ["--epochs", "1", "--device", "cpu", "--wandb_mode", "disabled"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("real_scripts"))
    cub_root, lists_dir, _ = make_cub(root)
    coco_root, _ = make_coco(root)
    return {"cub": cub_root, "lists": lists_dir, "coco": coco_root}


def script(name, env, *args):
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", name), *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env})
    assert done.returncode == 0, f"{name}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def read_json(path):
    with open(path) as stream:
        return json.load(stream)


@pytest.mark.slow
def test_cub_scripts_run_one_tiny_epoch_each(folders, tmp_path):
    env = {"CUB_ROOT": folders["cub"], "VGG16_WEIGHTS": "random", "RESULTS": str(tmp_path), "SEED": "0"}
    lists = ["--cub_lists", folders["lists"], "--samples_per_class", "3"]
    out = script("cub_pretrain.sh", env, *TINY, *lists)
    assert "RANDOM VGG16 WEIGHTS" in out
    pretrain = tmp_path / "pretrain_cub_warbler_seed0"
    assert read_json(pretrain / "run.json")["variants"]["backbone_weights"]["backbone_weights"] == "random"
    assert read_json(pretrain / "data_lists.json")["train"]["images"] == 6
    out = script("cub_agent.sh", env, *TINY, *lists)
    assert "RANDOM VGG16 WEIGHTS" in out  # the encoder's record travels with its checkpoint
    assert "Test Best Loc Acc" in read_json(tmp_path / "agent_cub_warbler_seed0" / "summary.json")
    assert {"Test CorLoc whole image", "Test CorLoc random policy", "Test Share Too Small"} <= set(
        read_json(tmp_path / "agent_cub_warbler_seed0" / "summary.json"))
    script("cub_adapt_grid.sh", {**env, "TARGETS": "wren", "SUPPORT": "2"}, *TINY, "--cub_lists", folders["lists"])
    run = tmp_path / "adapt_cub_warbler2wren_supp2_seed0"
    summary = read_json(run / "summary.json")
    assert summary["Test Images"] == 4 and summary["Train Images"] == 4  # transductive: the target list
    assert {"Test Before Loc Acc", "Test Last Loc Acc", "Test Label Free Loc Acc", "Test Best Loc Acc", "Test CorLoc whole image",
            "Test CorLoc random policy", "Test Share Too Small"} <= set(summary)
    record = read_json(run / "data_lists.json")
    assert len(record["support"]["ids"]) == 2 and set(record["support"]["ids"]) <= set(record["train"]["ids"])
    assert read_json(run / "run.json")["variants"]["backbone_weights"]["backbone_weights"] == "random"
    assert "| wren_193_197, support 2 | 1 |" in adaptation_table.table([str(run)])


@pytest.mark.slow
def test_coco_scripts_run_one_tiny_epoch_each(folders, tmp_path):
    env = {"COCO_ROOT": folders["coco"], "VGG16_WEIGHTS": "random", "RESULTS": str(tmp_path), "SEED": "0"}
    script("coco_pretrain.sh", env, *TINY, "--samples_per_class", "3")
    record = read_json(tmp_path / "pretrain_coco_dog_seed0" / "data_lists.json")
    assert record["train"]["ids"] == [101, 103, 109] and record["train"]["counts"]["single_crowd"] == 1
    script("coco_agent.sh", env, *TINY, "--samples_per_class", "3")
    script("coco_adapt.sh", {**env, "SUPPORT": "1"}, *TINY)
    run = tmp_path / "adapt_coco_dog2cat_supp1_seed0"
    assert read_json(run / "data_lists.json")["test"]["ids"] == [502, 507]
    assert read_json(run / "summary.json")["Test Images"] == 2


def agent_command(folders, saveroot, name, encoder, *extra):
    return [sys.executable, os.path.join(ROOT, "train_agent.py"), "--dataset", "cub", "--cub_root", folders["cub"], "--cub_lists",
            folders["lists"], "--bg_name", "warbler", "--img_size", "224", "--dim", "64", "--min_box_side", "40", "--num_act", "14",
            "--batch_size", "6", "--samples_per_class", "3", "--pretrained", encoder, "--saveroot", saveroot, "--savename", name,
            "--epochs", "4", "--box_cache", "0", "--device", "cpu", "--wandb_mode", "disabled", *extra]


@pytest.mark.slow
def test_real_agent_resumes_after_sigkill_as_if_uninterrupted(folders, tmp_path, capsys):
    """Killed after its first epoch and resumed, the run logs what the uninterrupted one logs (without the
    box memo, which starts empty on resume: with it the figures agree to float32 rounding, docs/speed.md)."""
    saveroot = str(tmp_path)
    torch.manual_seed(0)  # an untrained encoder checkpoint will do: the test is about the agent's resume
    encoder = os.path.join(saveroot, "encoder.pth.tar")
    save_checkpoint(model_checkpoint(0, VGGRoIEncoder(dim=64), 0.0), encoder)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed process: a convolution's rounding depends on the thread count
    try:
        train_agent = load_script("train_agent.py")  # the uninterrupted run and the resumed one in-process: no start-up
        train_agent.main(agent_command(folders, saveroot, "straight", encoder)[2:])
        killed_at = kill_after_first_epoch(agent_command(folders, saveroot, "killed", encoder), env,
                                           os.path.join(saveroot, "killed", "resume.pth.tar"))
        capsys.readouterr()
        train_agent.main(agent_command(folders, saveroot, "killed", encoder, "--resume", "1")[2:])
        assert f"resumed after epoch {killed_at}" in capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)
    assert read_metrics(os.path.join(saveroot, "straight")) == read_metrics(os.path.join(saveroot, "killed"))


def kill_after_first_epoch(command, env, resume_file):
    """Starts `command`, kills it with SIGKILL once its first resume state is written -> that state's epoch."""
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and victim.poll() is None and not os.path.isfile(resume_file):
        time.sleep(0.02)
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    return load_checkpoint(resume_file, ("epoch",))["epoch"]


@pytest.mark.parametrize("flags, message", [
    (["--sel_cls", "dog"], "--sel_cls is not read with --dataset mnist"),
    (["--bg_name", "wren"], "--bg_name wren names a CUB list"),
    (["--dataset", "coco", "--img_size", "224", "--coco_root", "x", "--sel_cls", "dog", "--backbone_weights", "random",
      "--cub_root", "y"], "--cub_root is not read with --dataset coco"),
    (["--dataset", "cub", "--img_size", "224", "--bg_name", "wren", "--cub_root", "x", "--backbone_weights", "random",
      "--cub_adapt_on", "source"], "--cub_adapt_on is not read by"),
    (["--dataset", "cub", "--bg_name", "wren", "--backbone_weights", "random"], "--img_size 84 does not fit --dataset cub"),
    (["--dataset", "cub", "--img_size", "224", "--bg_name", "wren", "--backbone_weights", "random"], "--cub_root is needed"),
    (["--dataset", "cub", "--img_size", "224", "--bg_name", "impulse_noise", "--cub_root", "x"], "names the test / target list"),
    (["--dataset", "coco", "--img_size", "224", "--coco_root", "x", "--backbone_weights", "random"], "--sel_cls is needed"),
    (["--dataset", "coco", "--img_size", "224", "--coco_root", "x", "--sel_cls", "dog"], "--backbone_weights is needed"),
    (["--dataset", "coco", "--img_size", "224", "--coco_root", "x", "--sel_cls", "dog", "--backbone_weights", "nope.pth"],
     "--backbone_weights nope.pth is not a file"),
    (["--dataset", "coco", "--img_size", "224", "--backbone", "res18"], "res18"),
    (["--dataset", "coco", "--img_size", "224", "--coco_root", "x", "--sel_cls", "dog", "--backbone_weights", "random",
      "--num_act", "15"], "--num_act must be in 2..14"),
    (["--num_act", "14"], "--num_act must be in 2..10"),
])
def test_bad_real_flags_are_one_line(flags, message, tmp_path, capsys):
    pretrain = load_script("pretrain_encoder_ordinal.py")
    with pytest.raises(SystemExit) as exit_:
        pretrain.main([*flags, "--saveroot", str(tmp_path), "--wandb_mode", "disabled"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("stage", ["pretrain", "adapt"])
def test_data_errors_are_one_line_and_write_nothing(folders, tmp_path, capsys, stage):
    script_name = {"pretrain": "pretrain_encoder_ordinal.py", "adapt": "adapt_agent.py"}[stage]
    flags = ["--dataset", "coco", "--img_size", "224", "--coco_root", folders["coco"], "--sel_cls", "zebra", "--saveroot", str(tmp_path),
             "--wandb_mode", "disabled", "--device", "cpu"]
    flags += ["--backbone_weights", "random"] if stage == "pretrain" else ["--pretrained_agent", "missing.pth.tar"]
    with pytest.raises(SystemExit) as exit_:
        load_script(script_name).main(flags)
    assert exit_.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "no class 'zebra'" in err[-1] and "Traceback" not in "\n".join(err)
    assert os.listdir(tmp_path) == []
