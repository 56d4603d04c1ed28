"""utils/data/backgrounds.py: the five background kinds (docs/method.md §10.1): digit placement, clutter,
patches, Gaussian and impulse noise."""

import math

import numpy as np
import pytest
import torch
import torchvision
from conftest import random_digits

from utils.data.backgrounds import (
    BACKGROUNDS,
    add_gaussian_noise,
    add_impulse_noise,
    add_patches,
    boxes_overlap,
    draw_patch_squares,
    make_background_images,
)
from utils.data.clutter import place_digits


def pasted(digits, labels):
    """Slow reference: each digit pasted at its label [x, y, 28, 28] on an 84x84 zero canvas."""
    canvases = np.zeros((len(digits), 84, 84), dtype=np.uint8)
    for canvas, digit, (x, y, _, _) in zip(canvases, digits, labels.astype(int)):
        canvas[y : y + 28, x : x + 28] = digit
    return canvases


def normal_cdf(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_clean_canvas_is_exactly_the_pasted_digit():
    digits = random_digits(np.random.default_rng(1), 200)
    images, labels = make_background_images("clean", digits, np.random.default_rng(2))
    assert images.shape == (200, 84, 84) and images.dtype == np.uint8
    assert labels.shape == (200, 4) and labels.dtype == np.float64
    assert (labels[:, 2:] == 28).all() and labels[:, :2].min() >= 0 and labels[:, :2].max() <= 56
    np.testing.assert_array_equal(images, pasted(digits, labels))


def test_digit_positions_cover_0_to_56():
    _, labels = make_background_images("clean", np.zeros((3000, 28, 28), np.uint8), np.random.default_rng(3))
    assert set(labels[:, 0].tolist()) == set(range(57)) and set(labels[:, 1].tolist()) == set(range(57))


@pytest.mark.parametrize("bg", BACKGROUNDS)
def test_every_kind_places_the_digit_first_then_draws_the_background(bg):
    """Same generator -> same digit positions for every kind: the background's draws come after the digit's."""
    rng = np.random.default_rng(4)
    digits, sources = random_digits(rng, 50), random_digits(rng, 20)
    images, labels = make_background_images(bg, digits, np.random.default_rng(5), clutter_source=sources)
    _, clean_labels = make_background_images("clean", digits, np.random.default_rng(5))
    assert images.shape == (50, 84, 84) and images.dtype == np.uint8 and labels.dtype == np.float64
    np.testing.assert_array_equal(labels, clean_labels)
    if bg in ("clean", "clutter", "patch"):  # no noise: the digit box's inner 26x26 is the digit untouched
        crops = np.stack([image[y + 1 : y + 27, x + 1 : x + 27] for image, (x, y, _, _) in zip(images, labels.astype(int))])
        np.testing.assert_array_equal(crops, digits[:, 1:27, 1:27])


def test_same_generator_same_images_and_kinds_validated():
    digits = random_digits(np.random.default_rng(6), 30)
    for bg in ("patch", "gaussian_noise", "impulse_noise"):
        first = make_background_images(bg, digits, np.random.default_rng(7))
        again = make_background_images(bg, digits, np.random.default_rng(7))
        other = make_background_images(bg, digits, np.random.default_rng(8))
        np.testing.assert_array_equal(first[0], again[0])
        assert not np.array_equal(first[0], other[0])
    with pytest.raises(ValueError, match="unknown background"):
        make_background_images("fog", digits, np.random.default_rng(0))
    with pytest.raises(ValueError, match="clutter_source"):
        make_background_images("clutter", digits, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        make_background_images("clean", digits.astype(np.float64), np.random.default_rng(0))


# ---- clutter ----


def test_clutter_is_16_whole_fragments_off_the_digit():
    """Full digits (all 255) and constant sources (all 7): each fragment is a 6x6 block of 7s on zeros."""
    digits = np.full((40, 28, 28), 255, dtype=np.uint8)
    sources = np.full((5, 28, 28), 7, dtype=np.uint8)
    images, labels = make_background_images("clutter", digits, np.random.default_rng(9), clutter_source=sources)
    assert set(np.unique(images).tolist()) == {0, 7, 255}
    np.testing.assert_array_equal((images == 255).sum(axis=(1, 2)), 28 * 28)  # the digit box is untouched
    np.testing.assert_array_equal((images == 7).sum(axis=(1, 2)), 16 * 36)  # 16 disjoint fragments, none on the digit
    np.testing.assert_array_equal(images == 255, pasted(digits, labels) == 255)


# ---- patch ----


@pytest.mark.parametrize(
    "patch_box, digit_box, overlap",
    [
        ([0, 0, 18, 18], [18, 18, 45, 45], False),  # shares only pixel (18, 18): intersection 0 x 0 without +1
        ([0, 0, 19, 19], [18, 18, 45, 45], True),  # intersection 1 x 1
        ([0, 18, 30, 60], [18, 18, 45, 45], True),
        ([45, 0, 83, 83], [18, 18, 45, 45], False),  # covers the box's last column only
        ([46, 0, 83, 83], [18, 18, 45, 45], False),
        ([20, 20, 40, 40], [18, 18, 45, 45], True),  # inside the box
    ],
)
def test_boxes_overlap_hand_cases(patch_box, digit_box, overlap):
    assert boxes_overlap(np.array([patch_box]), np.array([digit_box]))[0] == overlap


def test_boxes_overlap_is_iou_above_zero():
    rng = np.random.default_rng(10)
    corners = rng.integers(0, 84, (2, 5000, 2))
    sizes = rng.integers(1, 40, (2, 5000, 2))
    a, b = (np.concatenate([c, c + s - 1], 1) for c, s in zip(corners, sizes))
    iou = torchvision.ops.box_iou(torch.from_numpy(a).double(), torch.from_numpy(b).double()).diagonal().numpy()
    np.testing.assert_array_equal(boxes_overlap(a, b), iou > 0)


def test_patches_repainted_by_a_loop_and_never_over_the_digit_box():
    num = 2000
    canvases, labels = place_digits(np.zeros((num, 28, 28), np.uint8), np.random.default_rng(11))
    squares = add_patches(canvases, labels, np.random.default_rng(12))  # (4, N, 4) [x_p, y_p, s, gray]
    expected = np.zeros_like(canvases)
    for i in range(num):  # slow reference: paint the four squares in order, later ones on top
        for x_p, y_p, side, gray in squares[:, i]:
            expected[i, y_p : y_p + side, x_p : x_p + side] = gray
    np.testing.assert_array_equal(canvases, expected)
    x_p, y_p, side, gray = squares.reshape(-1, 4).T
    x, y = np.tile(labels[:, 0], 4), np.tile(labels[:, 1], 4)
    assert side.min() == 19 and side.max() == 55
    assert gray.min() == 50 and gray.max() == 219 and set(np.unique(canvases).tolist()) <= {0} | set(range(50, 220))
    assert (x_p >= 0).all() and (y_p >= 0).all() and (x_p + side <= 84).all() and (y_p + side <= 84).all()
    inter_w = np.minimum(x_p + side - 1, x + 27) - np.maximum(x_p, x)  # areas without +1
    inter_h = np.minimum(y_p + side - 1, y + 27) - np.maximum(y_p, y)
    assert not ((inter_w > 0) & (inter_h > 0)).any()  # IoU 0 with every digit box
    # an inclusive overlap of one column or row (IoU 0 without +1) is allowed and does happen
    edge = ((inter_w == 0) & (inter_h >= 0)) | ((inter_h == 0) & (inter_w >= 0))
    assert edge.any()
    crops = np.stack([c[yy + 1 : yy + 27, xx + 1 : xx + 27] for c, (xx, yy, _, _) in zip(canvases, labels)])
    assert not crops.any()  # the inner 26x26 of the digit box is never painted


def test_side_and_corner_are_redrawn_together():
    """Digit at (28, 28): the side distribution of accepted squares is the proposal weighted by each side's
    chance of a free corner, P(s) ~ A(s) / (85 - s)^2 with A(s) the number of allowed corners (counted here)."""
    num = 20000
    labels = np.tile([28, 28, 28, 28], (num, 1))
    sides = draw_patch_squares(labels, np.random.default_rng(13))[:, 2]
    weights = {}
    for side in range(19, 56):
        corner = np.arange(85 - side)
        inter_x = np.minimum(corner + side - 1, 55) - np.maximum(corner, 28)  # per corner coordinate
        free_x = inter_x <= 0
        allowed = (free_x[:, None] | free_x[None, :]).sum()
        weights[side] = allowed / (85 - side) ** 2
    total = sum(weights.values())
    expected_mean = sum(s * w for s, w in weights.items()) / total
    expected_sd = math.sqrt(sum((s - expected_mean) ** 2 * w for s, w in weights.items()) / total)
    assert weights[55] == 0 and not (sides == 55).any()  # a 55-pixel square cannot avoid a centred digit
    assert abs(sides.mean() - expected_mean) < 5 * expected_sd / math.sqrt(num)
    assert expected_mean < 30  # far below 37, the mean of a side redrawn on its own (uniform 19..55)


# ---- noise ----


def test_gaussian_noise_on_a_zero_canvas_rounds_half_of_it_to_zero():
    canvases = np.zeros((200, 84, 84), np.uint8)
    noisy = add_gaussian_noise(canvases, np.random.default_rng(14))
    n = noisy.size
    p_zero = normal_cdf(0.5 / 255 / 0.12)  # rounds to 0 when the noise is below half a gray level: ~0.5065
    assert abs((noisy == 0).mean() - p_zero) < 5 * math.sqrt(p_zero * (1 - p_zero) / n)
    # mean of round(255 * clip(N(0, 0.12^2), 0, 1)), summed by hand over the gray levels; ~ 0.12*255/sqrt(2 pi) = 12.2
    cdf = [normal_cdf((k + 0.5) / 255 / 0.12) for k in range(255)]
    expected = sum(k * (cdf[k] - cdf[k - 1]) for k in range(1, 255)) + 255 * (1 - cdf[254])
    sd = 255 * 0.12 * math.sqrt(0.5 - 1 / (2 * math.pi))  # half-normal's sd, bounds the rounded value's
    assert abs(expected - 0.12 * 255 / math.sqrt(2 * math.pi)) < 0.05
    assert abs(noisy.mean() - expected) < 5 * sd / math.sqrt(n)  # truncation would be ~0.25 lower: ~15 sd off


def test_gaussian_noise_formula_on_the_same_draws_digit_included():
    rng = np.random.default_rng(15)
    digits = random_digits(rng, 20)
    canvases, labels = place_digits(digits, rng)
    noisy = add_gaussian_noise(canvases, np.random.default_rng(16))
    normal = np.random.default_rng(16).normal(0, 0.12, canvases.shape)
    expected = np.round(np.float32(np.clip(canvases / 255 + normal, 0, 1) * 255)).astype(np.uint8)
    np.testing.assert_array_equal(noisy, expected)
    on_digit = pasted(np.ones_like(digits), labels) == 1
    assert (noisy != canvases)[on_digit].mean() > 0.9  # digit pixels change too (~2% stay, mostly 255s clipped)


def test_impulse_noise_on_mid_gray_hits_6_percent_half_salt_half_pepper():
    canvases = np.full((100, 84, 84), 128, np.uint8)
    noisy = add_impulse_noise(canvases.copy(), np.random.default_rng(17))
    n = noisy.size
    assert set(np.unique(noisy).tolist()) == {0, 128, 255}
    for value, p in ((0, 0.03), (255, 0.03), (128, 0.94)):
        assert abs((noisy == value).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_impulse_noise_covers_the_digit():
    digits = np.full((200, 28, 28), 128, np.uint8)
    images, labels = make_background_images("impulse_noise", digits, np.random.default_rng(18))
    crops = np.stack([image[y : y + 28, x : x + 28] for image, (x, y, _, _) in zip(images, labels.astype(int))])
    n, p = crops.size, 0.06
    assert abs((crops != 128).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    outside = pasted(np.ones_like(digits), labels) == 0  # the zero canvas around the digit: salt turns it to 255
    n, p = outside.sum(), 0.03
    assert abs((images[outside] == 255).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
