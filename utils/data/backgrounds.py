"""Digits on the successor method's five backgrounds (docs/method.md §10.1), vectorised over the batch.

Every kind starts like the 2021 data: the 28x28 digit at a uniform x, y in [0, 56] of an 84x84 zero
canvas, label ``[x, y, 28, 28]``; the background is drawn afterwards, so it may cover the digit
(noise) or must keep off it (clutter, patches). All randomness comes from the ``np.random.Generator``
passed in. Only the patch rejection retries are Python loops (over the canvases still pending).
"""

import numpy as np

from utils.data.clutter import IMAGE_SIZE, make_cluttered, place_digits
from utils.data.mnist import DIGIT_SIDE
from utils.errors import PatchDoesNotFit

BACKGROUNDS = ("clean", "clutter", "patch", "gaussian_noise", "impulse_noise")
BG_NUM_CLUTTER = 16  # the 2021 data has 32 fragments
NUM_PATCHES = 4
PATCH_SIDE_MIN, PATCH_SIDE_MAX = 19, 55  # inclusive
PATCH_GRAY_MIN, PATCH_GRAY_MAX = 50, 219  # inclusive
GAUSSIAN_STD = 0.12  # on pixel values in [0, 1] (MNIST-C gaussian_noise, severity 2)
IMPULSE_AMOUNT = 0.06  # fraction of pixels replaced (MNIST-C impulse_noise, severity 2)
# A patch with no allowed spot is impossible on an 84x84 canvas (a 19-pixel patch always fits beside the
# digit); the cap only turns a bug or an odd canvas into an error instead of a hang.
MAX_PATCH_TRIES = 10_000
# recorded in the provenance of generated files
BACKGROUND_PARAMETERS = {
    "clean": {},
    "clutter": {"num_clutter": BG_NUM_CLUTTER, "clutter_size": 6},
    "patch": {"num_patches": NUM_PATCHES, "side": [PATCH_SIDE_MIN, PATCH_SIDE_MAX], "gray": [PATCH_GRAY_MIN, PATCH_GRAY_MAX]},
    "gaussian_noise": {"std": GAUSSIAN_STD},
    "impulse_noise": {"amount": IMPULSE_AMOUNT, "salt_vs_pepper": 0.5},
}



def check_digits(digits):
    digits = np.asarray(digits)
    if digits.dtype != np.uint8 or digits.ndim != 3 or digits.shape[1:] != (DIGIT_SIDE, DIGIT_SIDE):
        raise ValueError(f"digits must be a (N, 28, 28) uint8 array, got {digits.dtype} {digits.shape}")
    return digits


def boxes_overlap(patch_boxes, digit_boxes):
    """True where IoU > 0, with areas without +1 (the IoU of docs/method.md §2).

    Both (N, 4) int, ``[x1, y1, x2, y2]`` x2 inclusive. The union is never zero here, so IoU > 0 exactly
    when both intersection sides ``min(x2) - max(x1)`` are positive: a patch may share one edge row or
    column with the digit box.
    """
    inter_w = np.minimum(patch_boxes[:, 2], digit_boxes[:, 2]) - np.maximum(patch_boxes[:, 0], digit_boxes[:, 0])
    inter_h = np.minimum(patch_boxes[:, 3], digit_boxes[:, 3]) - np.maximum(patch_boxes[:, 1], digit_boxes[:, 1])
    return (inter_w > 0) & (inter_h > 0)


def draw_patch_squares(labels, rng, canvas=IMAGE_SIZE):
    """One square per canvas off the digit box: side s uniform in [19, 55], corner uniform in [0, canvas - s].

    labels: (N, 4) int ``[x, y, w, h]`` of the digits. s, x_p, y_p are redrawn together while the square
    [x_p, y_p, x_p+s-1, y_p+s-1] has IoU > 0 with the digit box. Returns (N, 3) int64 ``[x_p, y_p, s]``.
    """
    num = len(labels)
    digit_boxes = np.stack([labels[:, 0], labels[:, 1], labels[:, 0] + labels[:, 2] - 1, labels[:, 1] + labels[:, 3] - 1], 1)
    squares = np.empty((num, 3), dtype=np.int64)
    pending = np.arange(num)
    for _ in range(MAX_PATCH_TRIES):
        side = rng.integers(PATCH_SIDE_MIN, PATCH_SIDE_MAX + 1, len(pending))
        left = rng.integers(0, canvas - side + 1)
        top = rng.integers(0, canvas - side + 1)
        squares[pending] = np.stack([left, top, side], 1)
        patch_boxes = np.stack([left, top, left + side - 1, top + side - 1], 1)
        pending = pending[boxes_overlap(patch_boxes, digit_boxes[pending])]
        if len(pending) == 0:
            return squares
    # not expected on 84x84 canvases: a 19-pixel patch always fits beside the digit
    raise PatchDoesNotFit(f"the patches do not fit: no patch spot off the digit found in {MAX_PATCH_TRIES} tries for {len(pending)} canvases")


def add_patches(canvases, labels, rng, num_patches=NUM_PATCHES):
    """Paint ``num_patches`` uniform gray squares (level uniform in [50, 219]) on each canvas, in place.

    canvases: (N, C, C) uint8; labels: (N, 4) int ``[x, y, w, h]``. Later squares overwrite earlier ones.
    Returns the squares (num_patches, N, 4) int64 ``[x_p, y_p, s, gray]`` in drawing order.
    """
    num, side, _ = canvases.shape
    coords = np.arange(side)
    drawn = []
    for _ in range(num_patches):
        left, top, size = draw_patch_squares(labels, rng, side).T
        gray = rng.integers(PATCH_GRAY_MIN, PATCH_GRAY_MAX + 1, num)
        in_rows = (coords >= top[:, None]) & (coords < (top + size)[:, None])  # (N, C)
        in_cols = (coords >= left[:, None]) & (coords < (left + size)[:, None])
        inside = in_rows[:, :, None] & in_cols[:, None, :]  # (N, C, C)
        np.copyto(canvases, np.broadcast_to(gray.astype(np.uint8)[:, None, None], canvases.shape), where=inside)
        drawn.append(np.stack([left, top, size, gray], 1))
    return np.stack(drawn)


def add_gaussian_noise(canvases, rng, std=GAUSSIAN_STD):
    """MNIST-C gaussian noise on whole canvases (N, C, C) uint8 -> new uint8 array.

    Each pixel c becomes round(float32(clip(c/255 + N(0, std^2), 0, 1) * 255)): rounded half to even,
    not truncated; the float32 cast follows the successor's code.
    """
    noisy = rng.normal(0.0, std, canvases.shape)
    noisy += canvases / 255.0
    np.clip(noisy, 0.0, 1.0, out=noisy)
    noisy *= 255
    return np.round(noisy.astype(np.float32)).astype(np.uint8)


def add_impulse_noise(canvases, rng, amount=IMPULSE_AMOUNT):
    """Salt-and-pepper noise on whole canvases (N, C, C) uint8, in place.

    Each pixel independently with probability ``amount`` becomes 255 or 0 with equal odds (scikit-image's
    salt & pepper with salt_vs_pepper 0.5, drawn from ``rng``); the others keep their value.
    """
    flat = canvases.reshape(-1)
    hit = np.flatnonzero(rng.random(flat.size) < amount)
    flat[hit] = rng.integers(0, 2, hit.size).astype(np.uint8) * 255
    return canvases


def make_background_images(bg, digits, rng, clutter_source=None):
    """One digit's images on background ``bg`` (one of BACKGROUNDS), docs/method.md §10.1.

    digits: (N, 28, 28) uint8; clutter_source: (M, 28, 28) uint8, all images of the split (needed for
    ``clutter`` only); rng: np.random.Generator. Returns images (N, 84, 84) uint8 and labels (N, 4) float64
    ``[x, y, 28, 28]``.
    """
    if bg not in BACKGROUNDS:
        raise ValueError(f"unknown background {bg!r}: use one of {BACKGROUNDS}")
    digits = check_digits(digits)
    if bg == "clutter":
        if clutter_source is None:
            raise ValueError("the clutter background needs clutter_source (the split's images)")
        # the 2021 generator (digit placement, then fragments on all-zero spots) with 16 fragments
        images, labels = make_cluttered(digits, clutter_source, rng, num_clutter=BG_NUM_CLUTTER)
        return images, labels.astype(np.float64)
    images, labels = place_digits(digits, rng)
    if bg == "patch":
        add_patches(images, labels, rng)
    elif bg == "gaussian_noise":
        images = add_gaussian_noise(images, rng)
    elif bg == "impulse_noise":
        add_impulse_noise(images, rng)
    return images, labels.astype(np.float64)
