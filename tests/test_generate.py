"""utils/data/generate.py: the generator's random streams, one per split, digit and background, seeded by
the background's name (docs/method.md §10.1). The generator script itself runs in tests/e2e/test_clutter_mnist_scale.py."""

import numpy as np

from utils.data.backgrounds import BACKGROUNDS
from utils.data.generate import BACKGROUND_SEEDS, digit_rng


def test_streams_differ_per_background_digit_and_from_the_2021_data():
    def first_draws(*key):
        return tuple(digit_rng(0, *key).integers(0, 2**31, 4).tolist())

    keys = [("test", 3, None)] + [("test", 3, bg) for bg in BACKGROUNDS] + [("test", 4, "patch"), ("train", 3, "patch")]
    assert len({first_draws(*key) for key in keys}) == len(keys)
    assert first_draws("test", 3, "patch") == first_draws("test", 3, "patch")


def test_background_streams_are_seeded_by_name_not_by_position():
    """Each background's data seed comes from its name (the table keeps the seeds of the files written
    so far), so reordering or extending BACKGROUNDS changes no file."""
    assert BACKGROUND_SEEDS == {"clean": 1, "clutter": 2, "patch": 3, "gaussian_noise": 4, "impulse_noise": 5}
    expected = np.random.default_rng(np.random.SeedSequence([7, 1, 3, 3])).integers(0, 2**31, 4)  # seed 7, test, digit 3, patch
    assert np.array_equal(digit_rng(7, "test", 3, "patch").integers(0, 2**31, 4), expected)
