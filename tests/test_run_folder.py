"""utils/run/folder.py: a start that fails before its first run file leaves the folder as it was."""

import os

import pytest

from utils.errors import RunFolderError
from utils.run.folder import RunFolder


class Failed(Exception):
    pass


def test_a_failed_fresh_start_removes_what_it_wrote(tmp_path):
    path = tmp_path / "run"
    with pytest.raises(Failed):
        with RunFolder(str(path), "train_agent.py", "fresh") as run_dir:
            os.makedirs(os.path.join(run_dir, "wandb", "offline-run-1"))  # wandb starts before the data are read
            open(os.path.join(run_dir, "sample_inds.json"), "w").write("{}")
            raise Failed
    assert not path.exists()


def test_a_failed_overwrite_puts_the_old_run_back(tmp_path):
    path = tmp_path / "run"
    os.makedirs(path)
    for name, text in (("metrics.jsonl", '{"epoch": 0}\n'), ("sample_inds.json", "old")):
        (path / name).write_text(text)
    with pytest.raises(Failed):
        with RunFolder(str(path), "train_agent.py", "overwrite") as run_dir:
            open(os.path.join(run_dir, "sample_inds.json"), "w").write("new")  # a record under an old name
            raise Failed
    assert sorted(os.listdir(path)) == [".run.lock", "metrics.jsonl", "sample_inds.json"] and (path / "sample_inds.json").read_text() == "old"
    assert [name for name in os.listdir(tmp_path) if name.startswith("run.old-")] == []


def test_evaluate_reads_only_a_run_with_checkpoints(tmp_path):
    with pytest.raises(RunFolderError, match="there is no run in"):
        RunFolder(str(tmp_path / "none"), "train-joint.py", "evaluate").__enter__()
    assert not (tmp_path / "none").exists()
    with pytest.raises(RunFolderError, match="holds no checkpoint"):
        RunFolder(str(tmp_path), "train-joint.py", "evaluate").__enter__()
    assert os.listdir(tmp_path) == []  # not even the lock
