"""--resume 1 on a run that ended, or was killed while ending, changes nothing or writes exactly its
end; a resumed run refuses other starting checkpoints; --workers changes no figure (all five scripts'
shared loop, utils/run/loop.py, and run folders, utils/run/folder.py)."""

import contextlib
import io
import json
import os
import shutil

import pytest
import torch
from conftest import load_script, read_metrics, write_corrupted_split, write_synthetic_split

pytestmark = pytest.mark.slow

RUN = ["--device", "cpu", "--wandb_mode", "disabled", "--epochs", "2", "--log_interval", "1"]
SUCCESSOR = ["--batch_size", "10", "--sample_size", "20", "--seq_len", "4"]


def run(script, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        load_script(script).main(argv)
    return out.getvalue()


def checkpoint(path):
    state = torch.load(path, weights_only=True)
    return {key: value for key, value in state.items() if key != "state_dict"}, state["state_dict"]


def assert_same_checkpoint(path, expected):
    extras, weights = checkpoint(path)
    assert extras == expected[0]
    assert weights.keys() == expected[1].keys() and all(torch.equal(weights[k], expected[1][k]) for k in weights)


def drop_last_record(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    lines = open(path).read().splitlines()
    open(path, "w").write("\n".join(lines[:-1]) + "\n")


@pytest.fixture(scope="module")
def successor(tmp_path_factory):
    root = tmp_path_factory.mktemp("ended")
    data, saveroot = str(root / "data"), str(root / "runs")
    write_corrupted_split(data, "patch", 3, "train", 30, seed=2)
    write_corrupted_split(data, "patch", 3, "test", 10, seed=1)
    write_corrupted_split(data, "clutter", 2, "train", 24, seed=3)
    write_corrupted_split(data, "clutter", 2, "test", 12, seed=4)
    base = ["--datapath", data, "--saveroot", saveroot, *RUN]
    commands = {
        "penc": ("pretrain_encoder_ordinal.py", [*base, "--savename", "penc", "--bg_name", "patch", "--digit", "3", "--batch_size", "10",
                                                 "--sample_size", "20"]),
        "agent": ("train_agent.py", [*base, "--savename", "agent", "--bg_name", "patch", "--digit", "3", *SUCCESSOR,
                                     "--pretrained", "penc/best.pth.tar"]),
        "adapt": ("adapt_agent.py", [*base, "--savename", "adapt", "--bg_name", "clutter", "--digit", "2", "--batch_size", "16",
                                     "--seq_len", "4", "--pretrained_agent", "agent/best.pth.tar"]),
    }
    for script, argv in commands.values():
        run(script, argv)
    return saveroot, commands


def test_resuming_an_ended_run_changes_nothing_and_says_so(successor):
    saveroot, commands = successor
    for name, (script, argv) in commands.items():
        run_dir = os.path.join(saveroot, name)
        before = open(os.path.join(run_dir, "metrics.jsonl")).read(), open(os.path.join(run_dir, "summary.json")).read()
        out = run(script, [*argv, "--resume", "1"])
        assert "the run ended after epoch 1 (--epochs 2); nothing to train" in out, name
        after = open(os.path.join(run_dir, "metrics.jsonl")).read(), open(os.path.join(run_dir, "summary.json")).read()
        assert after == before, name  # no repeated epoch, the after-adaptation figures kept


def test_a_run_killed_while_ending_writes_its_end_on_resume(successor):
    """As if killed after the last epoch's resume state: no last.pth.tar, no summary.json, no summary record."""
    saveroot, commands = successor
    script, argv = commands["adapt"]
    run_dir = os.path.join(saveroot, "adapt")
    summary, records, last = open(os.path.join(run_dir, "summary.json")).read(), read_metrics(run_dir), checkpoint(os.path.join(run_dir, "last.pth.tar"))
    os.remove(os.path.join(run_dir, "last.pth.tar"))
    os.remove(os.path.join(run_dir, "summary.json"))
    drop_last_record(run_dir)
    run(script, [*argv, "--resume", "1"])
    assert open(os.path.join(run_dir, "summary.json")).read() == summary and read_metrics(run_dir) == records
    assert_same_checkpoint(os.path.join(run_dir, "last.pth.tar"), last)
    assert "Test Last Loc Acc" in json.loads(summary)


def test_joint_run_killed_before_its_last_pair_writes_it_on_resume(synthetic_data, tmp_path, capsys):
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), *RUN, "--pooling_size", "3", "--batch_size", "32"]
    for name, seed in (("pre_a", "1"), ("pre_b", "2")):  # two different nets
        run("ordinal-pretrain-cluttermnist-scale.py", [*common, "--savename", name, "--epochs", "1", "--seed", seed])
    argv = [*common, "--seq_len", "4", "--num_act", "10", "--savename", "joint", "--pretrained", "pre_a/best.pth.tar"]
    run("train-joint.py", argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # the 2021 joint stage, too, continues only from the net it started from
        load_script("train-joint.py").main([*argv, "--resume", "1", "--pretrained", "pre_b/best.pth.tar"])
    assert stop.value.code == 1 and "--pretrained: the run in" in capsys.readouterr().err
    run_dir = tmp_path / "joint"
    pair = {name: checkpoint(str(run_dir / name)) for name in ("last_net.pth.tar", "last_agent.pth.tar")}
    for name in pair:
        os.remove(run_dir / name)
    out = run("train-joint.py", [*argv, "--resume", "1"])
    assert "nothing to train" in out
    for name, expected in pair.items():
        assert_same_checkpoint(str(run_dir / name), expected)


def test_resume_refuses_another_starting_checkpoint(successor, tmp_path, capsys):
    saveroot, commands = successor
    script, argv = commands["agent"]
    moved = shutil.copy(os.path.join(saveroot, "penc", "best.pth.tar"), tmp_path / "same_encoder.pth.tar")
    out = run(script, [*argv, "--resume", "1", "--pretrained", str(moved)])  # the same file elsewhere: fine
    assert "nothing to train" in out
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        load_script(script).main([*argv, "--resume", "1", "--pretrained", "penc/last.pth.tar"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and len(err) == 1 and "--pretrained: the run in" in err[0] and "last.pth.tar" in err[0]
    assert "same_encoder.pth.tar" in err[0]  # names the one the run started from (where it was last found)
    script, argv = commands["adapt"]
    with pytest.raises(SystemExit) as stop:
        load_script(script).main([*argv, "--resume", "1", "--pretrained_agent", "agent/last.pth.tar"])
    assert stop.value.code == 1 and "--pretrained_agent: the run in" in capsys.readouterr().err


def test_workers_change_no_figure(synthetic_data, tmp_path):
    """--workers 0 and 2 give the same run, and a run stopped after an epoch and resumed with another
    --workers continues it exactly (worker processes start afresh each epoch)."""
    base = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), *RUN, "--pooling_size", "3", "--batch_size", "16"]
    for workers in ("0", "2"):
        run("ordinal-pretrain-cluttermnist-scale.py", [*base, "--savename", f"w{workers}", "--workers", workers])
    assert read_metrics(str(tmp_path / "w0")) == read_metrics(str(tmp_path / "w2"))
    run("ordinal-pretrain-cluttermnist-scale.py", [*base, "--savename", "stopped", "--workers", "2", "--epochs", "1"])
    run("ordinal-pretrain-cluttermnist-scale.py", [*base, "--savename", "stopped", "--workers", "0", "--resume", "1"])
    assert read_metrics(str(tmp_path / "stopped")) == read_metrics(str(tmp_path / "w0"))


def test_bad_values_that_would_give_silent_wrong_results_are_refused(synthetic_data, successor, tmp_path, capsys):
    """--steps -5 (a milestone that never comes) and a test split smaller than one group (every Test
    figure 0) end with one line, before any run folder is left behind."""
    with pytest.raises(SystemExit) as stop:
        load_script("train-joint.py").main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--steps", "-5"])
    assert stop.value.code == 2 and "--steps must be >= 1" in capsys.readouterr().err
    saveroot, commands = successor
    script, argv = commands["penc"]
    with pytest.raises(SystemExit) as stop:
        load_script(script).main([*argv, "--saveroot", str(tmp_path), "--samples_per_class", "11", "--batch_size", "20"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and len(err) == 1 and "the test split of patch digit 3 has 10 images" in err[0]
    assert not os.path.exists(tmp_path / "penc")


def test_a_run_that_fails_before_its_first_epoch_leaves_nothing(successor, tmp_path, capsys):
    """A missing flag is refused before a folder is made; a start that fails after its folder was made
    (a support set larger than the target split) removes what it wrote; --evaluate never makes a run."""
    saveroot, commands = successor
    script, argv = commands["agent"]
    fresh = [*argv[:argv.index("--saveroot")], "--saveroot", str(tmp_path), *argv[argv.index("--saveroot") + 2:]]
    bare = [arg for i, arg in enumerate(fresh) if arg != "--pretrained" and (i == 0 or fresh[i - 1] != "--pretrained")]
    with pytest.raises(SystemExit) as stop:
        load_script(script).main(bare)
    assert stop.value.code == 2 and "--pretrained is needed" in capsys.readouterr().err and not os.listdir(tmp_path)
    script, argv = commands["adapt"]
    target = [*argv[:argv.index("--saveroot")], "--saveroot", str(tmp_path), *argv[argv.index("--saveroot") + 2:],
              "--pretrained_agent", os.path.join(saveroot, "agent", "best.pth.tar"), "--sample_size", "3"]
    with pytest.raises(SystemExit) as stop:
        load_script(script).main(target)
    assert stop.value.code == 1 and "--support_size 5 is larger than the 3" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # no folder, no sample_inds.json, no lock
    for evaluate in ([*target[:-2], "--evaluate"],):
        with pytest.raises(SystemExit) as stop:
            load_script(script).main(evaluate)
        assert stop.value.code == 1 and "--evaluate: there is no run in" in capsys.readouterr().err and not os.listdir(tmp_path)
    os.makedirs(tmp_path / "adapt")
    with pytest.raises(SystemExit) as stop:
        load_script(script).main([*target[:-2], "--evaluate"])
    assert stop.value.code == 1 and "holds no checkpoint to evaluate" in capsys.readouterr().err
    assert os.listdir(tmp_path / "adapt") == []
