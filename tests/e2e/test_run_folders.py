"""Run folders of ordinal-pretrain-cluttermnist-scale.py and train-joint.py runs (utils/run/folder.py,
resume.py, files.py through the scripts): nothing lost, nothing mixed (refuse, --resume, --overwrite, lock,
owner, temporaries, torn metrics lines, moved folders, interruptions and failures that leave no trace)."""

import errno
import fcntl
import glob
import io
import json
import os
import shutil

import pytest
import torch
from conftest import load_script, write_synthetic_split

import utils.run.files
from utils.run.files import append_line
from utils.run.folder import LOCK_FILE

pytestmark = pytest.mark.slow


PRETRAIN = "ordinal-pretrain-cluttermnist-scale.py"


JOINT = "train-joint.py"


FAST = ["--pooling_size", "3", "--batch_size", "32", "--max_batches", "1", "--wandb_mode", "disabled"]


def run_main(script, argv, capsys):
    """Calls a script's main() in-process -> (exit code (0 when it returns), stdout, stderr)."""
    try:
        load_script(script).main(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def flags(datapath, saveroot, savename, *extra):
    return ["--datapath", datapath, "--saveroot", str(saveroot), "--savename", savename, "--epochs", "1", *FAST, *extra]


def records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as stream:
        return [json.loads(line) for line in stream]


def contents(run_dir, names=("metrics.jsonl", "best.pth.tar", "resume.pth.tar")):
    return {name: open(os.path.join(run_dir, name), "rb").read() for name in names}


def test_fresh_run_refuses_a_run_folder_and_overwrite_moves_the_old_run_aside(synthetic_data, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    assert run_main(PRETRAIN, flags(synthetic_data, tmp_path, "run"), capsys)[0] == 0
    before = contents(run_dir)
    code, _, err = run_main(PRETRAIN, flags(synthetic_data, tmp_path, "run", "--seed", "5"), capsys)
    assert code == 1 and err.count("\n") == 1 and "already holds a run of ordinal-pretrain-cluttermnist-scale.py" in err
    assert "--resume 1" in err and "--overwrite 1" in err
    assert contents(run_dir) == before
    code, out, _ = run_main(PRETRAIN, flags(synthetic_data, tmp_path, "run", "--seed", "5", "--overwrite", "1"), capsys)
    aside = glob.glob(str(tmp_path / "run.old-*"))
    assert code == 0 and len(aside) == 1 and aside[0] in out
    assert contents(aside[0]) == before  # the old run, byte for byte
    assert len(records(run_dir)) == 1 and contents(run_dir) != before


def test_pretraining_and_joint_training_never_share_a_folder(synthetic_data, tmp_path, capsys):
    assert run_main(PRETRAIN, flags(synthetic_data, tmp_path, "shared"), capsys)[0] == 0
    before = contents(str(tmp_path / "shared"))
    joint = flags(synthetic_data, tmp_path, "shared", "--seq_len", "2")
    code, _, err = run_main(JOINT, joint, capsys)
    assert code == 1 and "holds a run of ordinal-pretrain-cluttermnist-scale.py" in err
    code, _, err = run_main(JOINT, [*joint, "--resume", "1"], capsys)
    assert code == 1 and "--resume 1 continues only a run of train-joint.py" in err
    code, _, err = run_main(JOINT, [*joint, "--evaluate", "1"], capsys)
    assert code == 1 and "evaluate it with ordinal-pretrain-cluttermnist-scale.py" in err
    assert contents(str(tmp_path / "shared")) == before
    code, out, _ = run_main(PRETRAIN, flags(synthetic_data, tmp_path, "shared", "--resume", "1", "--epochs", "2"), capsys)
    assert code == 0 and "resumed after epoch 0" in out and len(records(str(tmp_path / "shared"))) == 2


def test_a_second_run_in_a_locked_folder_is_refused(synthetic_data, tmp_path, capsys):
    run_dir = tmp_path / "busy"
    run_dir.mkdir()
    with open(run_dir / LOCK_FILE, "w") as held:  # what a running run holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, err = run_main(PRETRAIN, flags(synthetic_data, tmp_path, "busy"), capsys)
        assert code == 1 and err.count("\n") == 1 and f"another run is using {run_dir}" in err
        assert sorted(os.listdir(run_dir)) == [LOCK_FILE]
    assert run_main(PRETRAIN, flags(synthetic_data, tmp_path, "busy"), capsys)[0] == 0  # released: the lock goes with its run


def test_stale_temporaries_are_removed_at_start(synthetic_data, tmp_path, capsys):
    run_dir = tmp_path / "killed"
    assert run_main(PRETRAIN, flags(synthetic_data, tmp_path, "killed"), capsys)[0] == 0
    stale = [".best.pth.tar.k2j4h5g6.tmp", ".resume.pth.tar.a1b2c3d4.tmp"]  # what SIGKILL leaves mid-write
    for name in stale:
        (run_dir / name).write_bytes(b"\0" * 1000)
    (run_dir / ".keep").write_text("not a temporary")
    code, out, _ = run_main(PRETRAIN, flags(synthetic_data, tmp_path, "killed", "--resume", "1", "--epochs", "2"), capsys)
    assert code == 0 and "removed 2 temporary file(s) left by a killed run" in out
    assert not any((run_dir / name).exists() for name in stale) and (run_dir / ".keep").exists()


def test_torn_last_metrics_line_is_dropped_on_resume(synthetic_data, tmp_path, capsys):
    run_dir = tmp_path / "torn"
    assert run_main(PRETRAIN, flags(synthetic_data, tmp_path, "torn"), capsys)[0] == 0
    with open(run_dir / "metrics.jsonl", "a") as stream:
        stream.write('{"epoch": 1, "Train Total Lo')  # a full disk stopped the write
    code, _, err = run_main(PRETRAIN, flags(synthetic_data, tmp_path, "torn", "--resume", "1", "--epochs", "2"), capsys)
    assert code == 0 and "dropped 1 unreadable line(s)" in err and "Traceback" not in err
    assert [record["epoch"] for record in records(str(run_dir))] == [0, 1]


def test_failed_runs_leave_no_folder_behind(synthetic_data, tmp_path, capsys):
    write_synthetic_split(str(tmp_path / "train_only"), 4, "train", 8)
    code, _, err = run_main(PRETRAIN, flags(str(tmp_path / "train_only"), tmp_path / "results", "never"), capsys)
    assert code == 1 and "missing data file" in err
    code, _, err = run_main(JOINT, flags(synthetic_data, tmp_path / "results", "never", "--evaluate", "1"), capsys)
    assert code == 1 and "--evaluate: there is no run in" in err  # refused before any folder is made
    assert os.listdir(tmp_path / "results") == []


def test_resume_after_the_run_folder_moved_and_with_a_copy_of_the_data(synthetic_data, tmp_path, capsys):
    assert run_main(PRETRAIN, flags(synthetic_data, tmp_path / "old_root", "first"), capsys)[0] == 0
    shutil.move(str(tmp_path / "old_root"), str(tmp_path / "new_root"))
    os.rename(tmp_path / "new_root" / "first", tmp_path / "new_root" / "renamed")
    copy = shutil.copytree(synthetic_data, str(tmp_path / "copy"))
    resumed = flags(copy, tmp_path / "new_root", "renamed", "--resume", "1", "--epochs", "2")
    code, out, err = run_main(PRETRAIN, resumed, capsys)
    assert code == 0 and "resumed after epoch 0" in out, err
    write_synthetic_split(copy, 4, "test", 48, seed=9)  # other data under the same name
    code, _, err = run_main(PRETRAIN, [*resumed[:-1], "3"], capsys)
    assert code == 1 and "the data in --datapath differs from the data the run" in err


def test_interrupt_before_the_first_epoch_ended_names_no_missing_file(synthetic_data, tmp_path, capsys):
    script = load_script(PRETRAIN)

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    script.pretrain_epoch = ctrl_c
    with pytest.raises(SystemExit) as stop:
        script.main(flags(synthetic_data, tmp_path, "early"))
    err = capsys.readouterr().err
    assert stop.value.code == 130 and "before the first epoch ended" in err and "resume.pth.tar" not in err
    assert not (tmp_path / "early").exists()


def test_full_disk_names_the_file(synthetic_data, tmp_path, capsys, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    code, _, err = run_main(PRETRAIN, flags(synthetic_data, tmp_path, "full"), capsys)
    assert code == 1 and err.strip().endswith(f"{tmp_path / 'full' / 'best.pth.tar'}: No space left on device")
    assert not glob.glob(str(tmp_path / "full" / ".*.tmp"))

    class FullDisk(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(utils.run.files, "open", lambda *args, **kwargs: FullDisk(), raising=False)
    with pytest.raises(OSError) as error:
        append_line(str(tmp_path / "metrics.jsonl"), "{}")
    assert error.value.filename == str(tmp_path / "metrics.jsonl") and error.value.errno == errno.ENOSPC
