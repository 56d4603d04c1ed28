"""utils/run/checkpoints.py: atomic, plain checkpoints; original checkpoints with numpy values load."""

import os

import numpy as np
import pytest
import torch

from models import Net
from utils.errors import CheckpointError
from utils.run.checkpoints import load_checkpoint, load_weights, save_checkpoint


def test_checkpoints_are_atomic_and_plain(tmp_path, monkeypatch):
    path = str(tmp_path / "best.pth.tar")
    save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(2)}, "acc": 1.0}, path)

    def broken_save(obj, stream, *args, **kwargs):
        stream.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2, "state_dict": {"w": torch.zeros(2)}, "acc": 2.0}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1 and os.listdir(tmp_path) == ["best.pth.tar"]
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        torch.save([1, 2], str(tmp_path / "list.pth.tar"))
        load_checkpoint(str(tmp_path / "list.pth.tar"))


def test_original_checkpoint_with_numpy_acc_loads(tmp_path):
    """An `acc` computed with numpy (a numpy scalar) still loads with weights_only."""
    source = Net(pooling_size=5)
    path = str(tmp_path / "best.pth.tar")
    torch.save({"epoch": np.int64(7), "state_dict": source.state_dict(), "acc": np.float64(88.5)}, path)
    state = load_weights(Net(pooling_size=5), path)
    assert float(state["acc"]) == 88.5 and int(state["epoch"]) == 7


def test_a_failed_checkpoint_write_names_the_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    """torch reports a full disk while it writes as a RuntimeError; the run gets an OSError naming the file."""
    path = str(tmp_path / "resume.pth.tar")
    save_checkpoint({"epoch": 0}, path)

    def full_disk(state, stream):
        stream.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as failure:
        save_checkpoint({"epoch": 1}, path)
    assert failure.value.filename == path and "could not be written" in failure.value.strerror
    monkeypatch.undo()
    assert load_checkpoint(path, ("epoch",))["epoch"] == 0 and os.listdir(tmp_path) == ["resume.pth.tar"]


def test_a_state_dict_that_is_not_a_dict_is_refused(tmp_path):
    path = str(tmp_path / "odd.pth.tar")
    torch.save({"epoch": 0, "state_dict": [1, 2, 3], "acc": 0.0}, path)
    with pytest.raises(CheckpointError, match="state_dict is a list"):
        load_weights(Net(3), path, "net")


def test_ctrl_c_twice_while_a_checkpoint_is_written_stops_after_the_write(tmp_path, monkeypatch):
    import signal

    path = str(tmp_path / "resume.pth.tar")
    real_save = torch.save

    def interrupted_save(state, stream):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # pressed twice
        real_save(state, stream)

    monkeypatch.setattr(torch, "save", interrupted_save)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint({"epoch": 3, "state_dict": {}}, path)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back
    finally:
        signal.signal(signal.SIGINT, handler)
    assert load_checkpoint(path, ("epoch",))["epoch"] == 3 and os.listdir(tmp_path) == ["resume.pth.tar"]
