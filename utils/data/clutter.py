"""Vectorised cluttered-MNIST generation (docs/method.md §1).

Every step is done for the whole batch at once through flat indices into the (N, canvas, canvas)
array: a (P,) vector of window corners plus a fixed (k*k,) offset vector addresses P windows.
Only the 32 fragments and the rejection retries are Python loops.
"""

import os

import numpy as np

from utils.data.mnist import DIGIT_SIDE
from utils.errors import ClutterDoesNotFit

IMAGE_SIZE = 84  # the side of every image: the canvas the digit is placed on
NUM_CLUTTER = 32
CLUTTER_SIZE = 6
# The original resampled forever; a canvas with no free k x k spot (only possible with odd settings)
# raises instead of hanging.
MAX_LOCATION_TRIES = 10_000



def data_files(datapath, digit, split, bg=None):
    """Paths of one digit's `(data, label)` npy pair.

    bg None: the 2021 layout `<datapath>/<split>/moreclutter/<d>_moreclutter_{data,label}.npy`;
    a background name (utils/data/backgrounds.py): `<datapath>/<split>/<bg>/<d>_{data,label}.npy`.
    """
    if bg is None:
        folder = os.path.join(datapath, split, "moreclutter")
        return (os.path.join(folder, f"{digit}_moreclutter_data.npy"), os.path.join(folder, f"{digit}_moreclutter_label.npy"))
    folder = os.path.join(datapath, split, bg)
    return os.path.join(folder, f"{digit}_data.npy"), os.path.join(folder, f"{digit}_label.npy")


def window_offsets(size, row_stride):
    """(size*size,) int64 flat offsets of a size x size window in an array whose rows are row_stride long."""
    rows = np.arange(size, dtype=np.int64)
    return (rows[:, None] * row_stride + rows[None, :]).ravel()


def cut_patches(clutter_source, rng, num, size):
    """Draw ``num`` random size x size patches: random source image, top-left uniform in [0, 28 - size].

    clutter_source: (M, 28, 28) uint8. Returns (num, size*size) uint8, row-major patch pixels.
    """
    num_sources, side, _ = clutter_source.shape
    source_index = rng.integers(0, num_sources, num)
    top = rng.integers(0, side - size + 1, num)
    left = rng.integers(0, side - size + 1, num)
    corner = (source_index * side + top) * side + left
    return clutter_source.reshape(-1)[corner[:, None] + window_offsets(size, side)]


def find_empty_spots(canvases, rng, size):
    """For every canvas, a random top-left (uniform in [0, canvas - size]) whose size x size region is all zero.

    canvases: (N, C, C) uint8. Returns (N,) int64 flat indices of the chosen corners into ``canvases``.
    Rejection sampling as in docs/method.md §1, vectorised over the canvases still pending.
    """
    num, side, _ = canvases.shape
    flat = canvases.reshape(-1)
    offsets = window_offsets(size, side)
    image_start = np.arange(num, dtype=np.int64) * side * side
    corners = np.empty(num, dtype=np.int64)
    pending = np.arange(num)
    for _ in range(MAX_LOCATION_TRIES):
        top = rng.integers(0, side - size + 1, len(pending))
        left = rng.integers(0, side - size + 1, len(pending))
        corners[pending] = image_start[pending] + top * side + left
        occupied = flat[corners[pending][:, None] + offsets].any(axis=1)
        pending = pending[occupied]
        if len(pending) == 0:
            return corners
    raise ClutterDoesNotFit(f"the clutter does not fit: no all-zero {size}x{size} region found in {MAX_LOCATION_TRIES} tries "
                            f"for {len(pending)} canvases; use a smaller --num_clutter or --clutter_size")


def place_digits(digits, rng, canvas=IMAGE_SIZE):
    """Paste each 28x28 digit at a uniform random x, y in [0, canvas - 28] of an all-zero canvas.

    digits: (N, 28, 28) uint8. Returns canvases (N, canvas, canvas) uint8 and labels (N, 4) int64 [x, y, 28, 28].
    """
    num = len(digits)
    x = rng.integers(0, canvas - DIGIT_SIDE + 1, num)
    y = rng.integers(0, canvas - DIGIT_SIDE + 1, num)
    canvases = np.zeros((num, canvas, canvas), dtype=np.uint8)
    corner = np.arange(num, dtype=np.int64) * canvas * canvas + y * canvas + x
    canvases.reshape(-1)[corner[:, None] + window_offsets(DIGIT_SIDE, canvas)] = digits.reshape(num, -1)
    labels = np.stack([x, y, np.full(num, DIGIT_SIDE), np.full(num, DIGIT_SIDE)], axis=1).astype(np.int64)
    return canvases, labels


def make_cluttered(digits, clutter_source, rng, num_clutter=NUM_CLUTTER, clutter_size=CLUTTER_SIZE, canvas=IMAGE_SIZE):
    """Cluttered images of one class (docs/method.md §1).

    digits: (N, 28, 28) uint8, the images of one class; clutter_source: (M, 28, 28) uint8, all images of the same
    split; rng: np.random.Generator. Each digit goes at a random x, y in [0, canvas - 28]; then ``num_clutter``
    random clutter_size x clutter_size patches go on all-zero regions, so they never touch the digit or earlier
    fragments. Returns images (N, canvas, canvas) uint8 and labels (N, 4) int64 ``[x, y, 28, 28]``.
    """
    digits, clutter_source = np.asarray(digits), np.asarray(clutter_source)
    if digits.dtype != np.uint8 or clutter_source.dtype != np.uint8:
        raise TypeError(f"digits and clutter_source must be uint8, got {digits.dtype} and {clutter_source.dtype}")
    if digits.shape[1:] != (DIGIT_SIDE, DIGIT_SIDE) or clutter_source.shape[1:] != (DIGIT_SIDE, DIGIT_SIDE):
        raise ValueError(f"expected (N, 28, 28) arrays, got {digits.shape} and {clutter_source.shape}")
    if not 0 < clutter_size <= DIGIT_SIDE or canvas < DIGIT_SIDE or len(clutter_source) == 0:
        raise ValueError(f"bad sizes: clutter_size {clutter_size}, canvas {canvas}, {len(clutter_source)} clutter sources")
    canvases, labels = place_digits(digits, rng, canvas)
    flat = canvases.reshape(-1)
    offsets = window_offsets(clutter_size, canvas)
    for _ in range(num_clutter):
        patches = cut_patches(clutter_source, rng, len(digits), clutter_size)
        corners = find_empty_spots(canvases, rng, clutter_size)
        flat[corners[:, None] + offsets] = patches
    return canvases, labels
