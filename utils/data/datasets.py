"""The datasets: one digit and split of cluttered MNIST (docs/method.md §2), read and checked."""

import os

import numpy as np
import torch

from utils.data.backgrounds import BACKGROUNDS
from utils.data.clutter import IMAGE_SIZE, data_files
from utils.data.mnist import SPLITS
from utils.errors import DataError

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
GENERATE_HINT = "python clutter_mnist_scale.py --datapath {datapath} --digits {digit}{bg_flag}"



def load_arrays(datapath, digit, split, bg=None):
    """Reads one digit's files -> (images uint8 (N, 84, 84), labels float64 (N, 4) `[x, y, w, h]`).

    bg None reads the 2021 data (`moreclutter`), a name from utils.data.backgrounds.BACKGROUNDS that background's files.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {SPLITS}")
    if not (isinstance(digit, (int, np.integer)) and 0 <= digit <= 9):
        raise DataError(f"unknown digit {digit!r}: use 0..9")
    if bg is not None and bg not in BACKGROUNDS:
        raise DataError(f"unknown background {bg!r}: use one of {BACKGROUNDS}")
    hint = GENERATE_HINT.format(datapath=datapath, digit=digit, bg_flag=f" --bg_name {bg}" if bg else "")
    data_path, label_path = data_files(datapath, digit, split, bg)
    for path in (data_path, label_path):
        if not os.path.isfile(path):
            raise DataError(f"missing data file {path}; generate it with: {hint}")
    try:
        images = np.load(data_path)
        labels = np.load(label_path)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"cannot read {data_path} / {label_path} ({error}); regenerate with: {hint}") from None
    for path, array in ((data_path, images), (label_path, labels)):
        if not isinstance(array, np.ndarray):  # np.load opens an .npz archive (a zip) whatever the file's name
            raise DataError(f"{path} is an .npz archive, not a .npy array; regenerate with: {hint}")
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or labels.shape != (images.shape[0], 4):
        raise DataError(
            f"malformed data for digit {digit} ({split}): images {images.shape}, labels {labels.shape}; "
            f"expected (N, 84, 84) and (N, 4); regenerate with: {hint}"
        )
    if images.shape[0] == 0:
        raise DataError(f"{data_path} holds no images; regenerate with: {hint}")
    check_pixels(images, data_path, hint)
    check_labels(labels, label_path, hint)
    return np.ascontiguousarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.float64)


def check_pixels(images, data_path, hint):
    """Pixels must be whole numbers in 0..255 (uint8, or the original's float64)."""
    if images.dtype.kind not in "iuf":  # bool, complex, strings: not pixel values
        raise DataError(f"{data_path}: pixel values must be whole numbers in 0..255, got dtype {images.dtype}; regenerate with: {hint}")
    if images.dtype != np.uint8:
        # float64 files of the original: whole numbers in 0..255, so uint8 is lossless (NaN fails the equality)
        if images.min() < 0 or images.max() > 255 or not np.array_equal(images, np.round(images)):
            raise DataError(f"{data_path}: pixel values must be whole numbers in 0..255; regenerate with: {hint}")


def check_labels(labels, label_path, hint):
    """Every label `[x, y, w, h]` must be a finite, non-empty box inside the 84x84 image; otherwise
    DataError naming the file, the first bad row and what is wrong with it."""
    if labels.dtype.kind not in "iuf":
        raise DataError(f"{label_path}: labels must be numbers [x, y, w, h], got dtype {labels.dtype}; regenerate with: {hint}")
    x, y, w, h = labels.astype(np.float64).T
    problems = (  # in this order per row; NaN compares False, so the finiteness rule comes first
        (~np.isfinite(labels).all(axis=1), "is not finite (NaN or inf)"),
        ((x < 0) | (y < 0), "starts outside the image (x or y < 0)"),
        ((w < 1) | (h < 1), "is empty (width or height < 1)"),
        ((x + w > IMAGE_SIZE) | (y + h > IMAGE_SIZE), f"ends outside the image (x + w or y + h > {IMAGE_SIZE})"),
    )
    bad = [(int(np.argmax(mask)), what) for mask, what in problems if mask.any()]
    if bad:
        row, what = min(bad, key=lambda item: item[0])  # the first bad row, with its first problem
        raise DataError(f"{label_path}: row {row}, label [x, y, w, h] = {labels[row].tolist()}, {what}; "
                        f"labels must be boxes inside the {IMAGE_SIZE}x{IMAGE_SIZE} image; regenerate with: {hint}")


def normalize(images_uint8, mean=MNIST_MEAN, std=MNIST_STD):
    """(..., 84, 84) uint8 -> float in [0, 1] -> normalised float32 (MNIST's statistics by default)."""
    return (images_uint8.float() / 255.0 - mean) / std


def xywh_to_xyxy(labels):
    """`[x, y, w, h]` -> `[x, y, x + w - 1, y + h - 1]` (x2 inclusive), as a new tensor."""
    labels = torch.as_tensor(labels, dtype=torch.float32)
    return torch.cat([labels[..., :2], labels[..., :2] + labels[..., 2:] - 1], dim=-1)


class ClutteredMNIST(torch.utils.data.Dataset):
    """One digit and split of cluttered MNIST, held in memory.

    `dataset[i]` -> (image (1, 84, 84) float32 normalised, target (4,) float32 `[x1, y1, x2, y2]`).
    Indexing with a 1-D index tensor or list returns a batch ((B, 1, 84, 84), (B, 4)) in one go.
    `images` (N, 84, 84) uint8 and `targets` (N, 4) float32 hold the whole split; the stored
    labels are converted once and never modified (the original's transform grew them in place).
    `indices` restricts the dataset to a subset of the file's items (e.g. a validation split); `bg`
    reads a background kind of the successor's data instead of the 2021 clutter; `norm` (mean, std)
    the statistics the images are normalised with (MNIST's by default).
    """

    def __init__(self, datapath, digit, split, indices=None, bg=None, norm=(MNIST_MEAN, MNIST_STD)):
        images, labels = load_arrays(datapath, digit, split, bg=bg)
        self.digit, self.split, self.norm = digit, split, tuple(norm)
        self.images = torch.from_numpy(images)
        self.targets = xywh_to_xyxy(labels)
        if indices is not None:
            indices = torch.as_tensor(indices, dtype=torch.long)
            self.images, self.targets = self.images[indices], self.targets[indices]

    def __len__(self):
        return self.images.shape[0]

    def fingerprint_parts(self):
        """What identifies the data a run reads (its data fingerprint): the pixels and boxes."""
        return [self.images.contiguous().numpy(), self.targets.contiguous().numpy()]

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            index = torch.as_tensor(index, dtype=torch.long)
            return normalize(self.images[index], *self.norm).unsqueeze(1), self.targets[index].clone()
        return normalize(self.images[index], *self.norm).unsqueeze(0), self.targets[index].clone()
