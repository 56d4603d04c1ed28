"""utils/localization/actions.py (Actor): the 2021 actor against a plain per-window reference written
from docs/method.md §5, and hand-checked cases; then the successor's actor (``Actor(..., inclusive=True)``,
docs/method.md §10.7) against the same reference with the successor's inclusive rules, on the
table-lookup and the arithmetic paths (its tests are named test_inclusive_*)."""

import functools
import random

import pytest
import torch

from utils.data.clutter import IMAGE_SIZE
from utils.localization.actions import (
    ACTION_NAMES,
    MIN_BOX_SIDE,
    NUM_ACTIONS_SUPPORTED,
    STEP_FACTOR,
    Actor,
    _cpu_transition_table,
    transition_table,
)


def reference_takeaction(window: list[int], action: int, m: int = 28, W: int = 84, H: int = 84, inclusive: bool = False) -> list[int]:
    """One action on one window, straight from the docs/method.md §5 table, with Python floats and int() truncation.

    `inclusive`: the successor's actor (docs/method.md §10.7): sides x2 - x1 + 1, its blocked-move
    windows and its min-side rule."""
    one = 1 if inclusive else 0
    x1, y1, x2, y2 = window
    bw = x2 - x1 + one
    bh = y2 - y1 + one
    if bw - 0.2 * bw >= m:
        d = 0.2 if bh - 0.2 * bh >= m else 1 - m / bh
    else:
        d = 1 - m / bw
        if bh - d * bh < m:
            d = 1 - m / bh

    if action == 0:  # shrink to top-left
        x2 = int(x2 - d * bw)
        y2 = int(y2 - d * bh)
    elif action == 1:  # shrink to top-right
        x1 = int(x1 + d * bw)
        y2 = int(y2 - d * bh)
    elif action == 2:  # shrink to bottom-left
        y1 = int(y1 + d * bh)
        x2 = int(x2 - d * bw)
    elif action == 3:  # shrink to bottom-right
        x1 = int(x1 + d * bw)
        y1 = int(y1 + d * bh)
    elif action == 4:  # shrink to centre
        x1 = int(x1 + d * bw / 2)
        y1 = int(y1 + d * bh / 2)
        x2 = int(x2 - d * bw / 2)
        y2 = int(y2 - d * bh / 2)
    elif action == 5:  # stay
        pass
    elif action == 6:  # move left
        s = 0.2 * bw
        if x1 - s >= 0:
            x1, x2 = int(x1 - s), int(x2 - s)
        else:
            x1, x2 = 0, bw - one
    elif action == 7:  # move right
        s = 0.2 * bw
        if x2 + s < W:
            x1, x2 = int(x1 + s), int(x2 + s)
        else:
            x1, x2 = W - bw - 1 + one, W - 1
    elif action == 8:  # move up
        s = 0.2 * bh
        if y1 - s >= 0:
            y1, y2 = int(y1 - s), int(y2 - s)
        else:
            y1, y2 = 0, bh - one
    elif action == 9:  # move down
        s = 0.2 * bh
        if y2 + s < H:
            y1, y2 = int(y1 + s), int(y2 + s)
        else:
            y1, y2 = H - bh - 1 + one, H - 1
    else:
        raise ValueError(action)

    # Clip, in the documented order.
    if x1 < 0:
        shift = -x1
        if x2 + shift < W:
            x1, x2 = x1 + shift, x2 + shift
        else:
            x1, x2 = 0, W - 1
    if y1 < 0:
        shift = -y1
        if y2 + shift < H:
            y1, y2 = y1 + shift, y2 + shift
        else:
            y1, y2 = 0, H - 1
    if x2 > W - 1:
        shift = x2 - W + 1
        if x1 - shift >= 0:
            x1, x2 = x1 - shift, x2 - shift
        else:
            x1, x2 = 0, W - 1
    if y2 > H - 1:
        shift = y2 - H + 1
        if y1 - shift >= 0:
            y1, y2 = y1 - shift, y2 - shift
        else:
            y1, y2 = 0, H - 1
    # the min side, measured after the shifts (2021: x2 - x1 < m, room when x1 + m <= W;
    # inclusive: x2 - x1 + 1 < m, room when x1 + m < W)
    if x2 - x1 + one < m:
        if x1 + m + one <= W:
            x2 = x1 + m - 1
        else:
            x1 = x2 - m + 1
    if y2 - y1 + one < m:
        if y1 + m + one <= H:
            y2 = y1 + m - 1
        else:
            y1 = y2 - m + 1
    return [x1, y1, x2, y2]


def random_windows(rng: random.Random, count: int, size: int = IMAGE_SIZE) -> list[list[int]]:
    """Windows anywhere in the image (x2 may be `size`, like the start window), sides from 1 to size."""
    windows = []
    for _ in range(count):
        x1, y1 = rng.randrange(size), rng.randrange(size)
        windows.append([x1, y1, rng.randint(x1 + 1, size), rng.randint(y1 + 1, size)])
    return windows


def border_windows(m: int = MIN_BOX_SIDE, size: int = IMAGE_SIZE) -> list[list[int]]:
    """Every pairing of intervals that touch or cross the borders, of sides below, at and above m."""
    last = size - 1
    intervals = [(0, last), (0, size), (1, size), (0, m - 1), (0, m), (0, m + 1), (last - m + 1, last), (last - m, last)]
    intervals += [(size - m, size), (last - 1, last), (0, 1), (last - 5, size), (30, 30 + m - 1), (40, 40 + m // 2)]
    intervals = [(lo, hi) for lo, hi in intervals if 0 <= lo < hi <= size]
    return [[x1, y1, x2, y2] for x1, x2 in intervals for y1, y2 in intervals]


def assert_matches_reference(windows, action_sequence, m=MIN_BOX_SIDE, size=IMAGE_SIZE, device="cpu", inclusive=False, tables=True):
    """Run the Actor and the reference side by side; compare windows and returned boxes after every step.
    `inclusive`: the successor's actor, through its lookup tables or (`tables=False`) its arithmetic path."""
    if inclusive:
        actor = make_actor(windows, m, size, device, tables)
        assert bool(actor._tables) == tables
    else:
        actor = Actor(len(windows), min_box_side=m, image_size=size, device=device)
        actor.windows = torch.tensor(windows)
    expected = [list(window) for window in windows]
    for step, actions in enumerate(action_sequence):
        before = expected
        boxes = actor.takeaction(torch.tensor(actions, device=device))
        expected = [reference_takeaction(w, a, m, size, size, inclusive=inclusive) for w, a in zip(expected, actions)]
        got = actor.windows.tolist()
        if got != expected:
            i = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
            pytest.fail(f"step {step}, window {i}: {before[i]} action {actions[i]} -> {got[i]}, reference {expected[i]}")
        assert boxes.dtype == torch.float32 and boxes.device == actor.device
        assert boxes.cpu().tolist() == [[float(v) for v in w] for w in expected]
    return expected


@pytest.mark.parametrize("m", [28, 20, 40, 2, 84])
def test_random_action_sequences_match_reference(m):
    rng = random.Random(m)
    windows = random_windows(rng, 2000)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(30)]
    assert_matches_reference(windows, actions, m=m)


@pytest.mark.parametrize("m", [28, 20, 40])
def test_sequences_from_start_window_match_reference(m):
    rng = random.Random(100 + m)
    windows = [[0, 0, IMAGE_SIZE, IMAGE_SIZE]] * 500
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(30)]
    assert_matches_reference(windows, actions, m=m)


@pytest.mark.parametrize("m", [28, 20, 40])
@pytest.mark.parametrize("action", range(NUM_ACTIONS_SUPPORTED))
def test_repeated_single_action_matches_reference(action, m):
    rng = random.Random(action)
    windows = [[0, 0, IMAGE_SIZE, IMAGE_SIZE]] + random_windows(rng, 200) + border_windows(m)
    assert_matches_reference(windows, [[action] * len(windows)] * 40, m=m)


@pytest.mark.parametrize("m", [28, 20, 40])
def test_border_and_small_windows_match_reference(m):
    # Each border window under every action, then a few random steps on; small sides give negative d.
    rng = random.Random(7)
    windows = border_windows(m) + [[x, y, x + w, y + h] for x, y, w, h in [(40, 40, 20, 20), (70, 0, 13, 40), (5, 5, 1, 1)]]
    windows = [w for w in windows for _ in range(NUM_ACTIONS_SUPPORTED)]
    first_actions = [i % NUM_ACTIONS_SUPPORTED for i in range(len(windows))]
    later_actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(5)]
    assert_matches_reference(windows, [first_actions] + later_actions, m=m)


def test_other_image_size_matches_reference():
    rng = random.Random(3)
    windows = random_windows(rng, 500, size=64)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(20)]
    assert_matches_reference(windows, actions, m=20, size=64)


def actor_at(window: list[int], m: int = MIN_BOX_SIDE) -> Actor:
    actor = Actor(1, min_box_side=m)
    actor.windows = torch.tensor([window])
    return actor


# From the start window [0, 0, 84, 84]: bw = bh = 84, 84 - 16.8 >= 28 both ways so d = 0.2, d*bw = 16.8.
# 0: x2 = y2 = int(84 - 16.8) = 67.                  1: x1 = int(16.8) = 16, y2 = 67 -> x2 = 84 > 83 shifts left by 1.
# 2: mirror of 1 on y.                               3: x1 = y1 = 16 -> x2 = y2 = 84 shift both left/up by 1.
# 4: x1 = y1 = int(8.4) = 8, x2 = y2 = int(75.6) = 75. 5: x2 = y2 = 84 > 83, x1 - 1 < 0 -> x1 = 0, x2 = 83 (same y).
# 6: 0 - 16.8 < 0 -> x1 = 0, x2 = bw = 84 -> clipped as 5.  7: 84 + 16.8 >= 84 -> x1 = 84-84-1 = -1, x2 = 83;
#    x1 < 0 and 83 + 1 is not < 84 -> x1 = 0, x2 = 83.  8, 9: as 6, 7 on y. All moves end at [0, 0, 83, 83].
START_CASES = [
    [0, 0, 67, 67], [15, 0, 83, 67], [0, 15, 67, 83], [15, 15, 83, 83], [8, 8, 75, 75],
    [0, 0, 83, 83], [0, 0, 83, 83], [0, 0, 83, 83], [0, 0, 83, 83], [0, 0, 83, 83],
]  # fmt: skip


# From [10, 20, 60, 70]: bw = bh = 50, 50 - 10 >= 28 -> d = 0.2, d*bw = d*bh = 10.0 (exact in double), s = 10.
# 0: x2 = 50, y2 = 60.  1: x1 = 20, y2 = 60.  2: y1 = 30, x2 = 50.  3: x1 = 20, y1 = 30.  4: +-5 on every side.
# 6: 10 - 10 = 0 >= 0 -> x = [0, 50].  7: 60 + 10 < 84 -> x = [20, 70].  8: y = [10, 60].  9: 70 + 10 < 84 -> y = [30, 80].
INTERIOR_CASES = [
    [10, 20, 50, 60], [20, 20, 60, 60], [10, 30, 50, 70], [20, 30, 60, 70], [15, 25, 55, 65],
    [10, 20, 60, 70], [0, 20, 50, 70], [20, 20, 70, 70], [10, 10, 60, 60], [10, 30, 60, 80],
]  # fmt: skip


# From [5, 0, 47, 30]: bw = 42, bh = 30. 42 - 8.4 >= 28 but 30 - 6 < 28 -> d = 1 - 28/30 = 0.06666666666666665
# (a hair below 1/15), so d*bw = 2.7999999999999994 and d*bh = 1.9999999999999996: Python-float truncation shows.
# 0: x2 = int(44.2) = 44, y2 = int(30 - 1.99..96) = int(28.0) = 28.  1: x1 = int(7.8) = 7, y2 = 28.
# 2: y1 = int(0 + 1.9999999999999996) = 1 (not 2), x2 = 44.  3: x1 = 7, y1 = 1.
# 4: d*bw/2 = 1.3999999999999997, d*bh/2 = 0.9999999999999998: x1 = int(6.4) = 6, y1 = int(0.99..98) = 0,
#    x2 = int(45.6) = 45, y2 = int(29.0) = 29.  6: 5 - 8.4 < 0 -> x = [0, bw] = [0, 42].
# 7: 47 + 8.4 < 84 -> x = [int(13.4), int(55.4)] = [13, 55].  8: 0 - 6 < 0 -> y = [0, bh] = [0, 30].  9: y = [6, 36].
TRUNCATION_CASES = [
    [5, 0, 44, 28], [7, 0, 47, 28], [5, 1, 44, 30], [7, 1, 47, 30], [6, 0, 45, 29],
    [5, 0, 47, 30], [0, 0, 42, 30], [13, 0, 55, 30], [5, 0, 47, 30], [5, 6, 47, 36],
]  # fmt: skip


@pytest.mark.parametrize(
    "window, expected_per_action",
    [([0, 0, 84, 84], START_CASES), ([10, 20, 60, 70], INTERIOR_CASES), ([5, 0, 47, 30], TRUNCATION_CASES)],
)
@pytest.mark.parametrize("action", range(NUM_ACTIONS_SUPPORTED))
def test_hand_checked_action(window, expected_per_action, action):
    actor = actor_at(window)
    boxes = actor.takeaction(torch.tensor([action]))
    assert actor.windows.tolist() == [expected_per_action[action]]
    assert boxes.tolist() == [[float(v) for v in expected_per_action[action]]]
    assert reference_takeaction(window, action) == expected_per_action[action]


# Sides below m: d < 0, so the "shrinks" grow the window. [0, 0, 20, 20]: 20 - 4 < 28 -> d = 1 - 28/20
# = -0.3999999999999999, and 20 - d*20 = 27.999999999999998 < 28 -> d = 1 - 28/20 again; d*bw = -7.999999999999998.
#   0: x2 = y2 = int(20 + 7.99..98) = int(28.0) = 28 -> [0, 0, 28, 28].
#   1: x1 = int(-7.999999999999998) = -7 (toward zero, floor would give -8), y2 = 28 -> shift right 7 -> [0, 0, 27, 28].
#   4: x1 = y1 = int(-3.999999999999999) = -3, x2 = y2 = int(24.0) = 24 -> shift by 3 -> [0, 0, 27, 27].
# [40, 40, 60, 60], same d: 0: x2 = y2 = int(68.0) = 68.  3: x1 = y1 = int(32.0) = 32.
# [50, 50, 80, 83]: bw = 30, bh = 33; 30 - 6 < 28 -> d = 1 - 28/30, 33 - d*33 >= 28 keeps it; d*bw = 1.9999999999999996,
#   d*bh = 2.1999999999999993.  0: x2 = int(78.0) = 78, y2 = int(80.8) = 80.
#   7: 80 + 6 >= 84 -> x = [84 - 30 - 1, 83] = [53, 83].  8: s = 6.6000000000000005 -> y = [int(43.4), int(76.4)].
#   9: 83 + 6.6 >= 84 -> y = [84 - 33 - 1, 83] = [50, 83], unchanged.
# [70, 0, 83, 40]: bw = 13 < m.  5: clip (5): 70 + 28 > 84 -> x1 = x2 - 28 + 1 = 56.
#   0: d = 1 - 28/13, x2 = int(83 + 15.0) = 98, y2 = int(40 + 46.15) = 86 -> x2 > 83 shifts left by 15 to [55, 83];
#      y2 > 83 but 0 - 3 < 0 -> y = [0, 83].
@pytest.mark.parametrize(
    "window, action, expected",
    [
        ([0, 0, 20, 20], 0, [0, 0, 28, 28]),
        ([0, 0, 20, 20], 1, [0, 0, 27, 28]),
        ([0, 0, 20, 20], 4, [0, 0, 27, 27]),
        ([40, 40, 60, 60], 0, [40, 40, 68, 68]),
        ([40, 40, 60, 60], 3, [32, 32, 60, 60]),
        ([50, 50, 80, 83], 0, [50, 50, 78, 80]),
        ([50, 50, 80, 83], 7, [53, 50, 83, 83]),
        ([50, 50, 80, 83], 8, [50, 43, 80, 76]),
        ([50, 50, 80, 83], 9, [50, 50, 80, 83]),
        ([70, 0, 83, 40], 5, [56, 0, 83, 40]),
        ([70, 0, 83, 40], 0, [55, 0, 83, 83]),
    ],
)
def test_hand_checked_small_and_border_windows(window, action, expected):
    actor = actor_at(window)
    actor.takeaction(torch.tensor([action]))
    assert actor.windows.tolist() == [expected]


def test_min_box_side_changes_the_clip():
    # [70, 0, 83, 40] staying: x side 13 < m; 70 + m > 84 so x1 = 83 - m + 1. m = 20 -> 64, m = 40 -> 44, y side 40 < 40? no.
    for m, expected in [(20, [64, 0, 83, 40]), (40, [44, 0, 83, 40])]:
        actor = actor_at([70, 0, 83, 40], m=m)
        actor.takeaction(torch.tensor([5]))
        assert actor.windows.tolist() == [expected]


def test_batch_applies_one_action_per_window():
    actor = Actor(NUM_ACTIONS_SUPPORTED)
    boxes = actor.takeaction(torch.arange(NUM_ACTIONS_SUPPORTED))
    assert boxes.shape == (NUM_ACTIONS_SUPPORTED, 4) and boxes.dtype == torch.float32
    assert actor.windows.tolist() == START_CASES
    assert torch.equal(actor.boxes(), boxes)


def test_constants():
    assert (STEP_FACTOR, MIN_BOX_SIDE, IMAGE_SIZE, NUM_ACTIONS_SUPPORTED) == (0.2, 28, 84, 10)
    assert len(ACTION_NAMES) == NUM_ACTIONS_SUPPORTED and ACTION_NAMES[5] == "stay"


def test_batch_size_and_device_from_images():
    actor = Actor(torch.zeros(3, 1, 84, 84))
    assert actor.windows.shape == (3, 4) and actor.windows.dtype == torch.int64
    assert actor.windows.tolist() == [[0, 0, 84, 84]] * 3
    assert actor.device == torch.device("cpu") and actor.boxes().device == torch.device("cpu")
    assert Actor(5).windows.shape == (5, 4)
    with pytest.raises(ValueError):
        Actor(torch.zeros(3, 84, 84))


@pytest.mark.parametrize("bad", [[-1, 0], [0, 10], [13, 5]])
def test_out_of_range_actions_raise(bad):
    actor = Actor(2)
    with pytest.raises(ValueError):
        actor.takeaction(torch.tensor(bad))
    assert actor.windows.tolist() == [[0, 0, 84, 84]] * 2  # nothing applied


def test_bad_action_shape_or_dtype_raise():
    actor = Actor(2)
    with pytest.raises(ValueError):
        actor.takeaction(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError):
        actor.takeaction(torch.tensor([1.0, 2.0]))


def test_bad_settings_and_windows_raise():
    with pytest.raises(ValueError):
        Actor(2, min_box_side=1)
    with pytest.raises(ValueError):
        Actor(2, min_box_side=85)
    actor = Actor(1)
    with pytest.raises(ValueError):
        actor.windows = torch.tensor([[10, 10, 10, 20]])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_reference():
    rng = random.Random(11)
    windows = random_windows(rng, 4000) + border_windows()
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(30)]
    assert_matches_reference(windows, actions, device="cuda")
    images = torch.zeros(len(windows), 1, 84, 84, device="cuda")
    gpu, cpu = Actor(images), Actor(len(windows))
    assert gpu.device.type == "cuda"
    for step_actions in actions:
        step_actions = torch.tensor(step_actions)
        assert torch.equal(gpu.takeaction(step_actions.cuda()).cpu(), cpu.takeaction(step_actions))


def test_table_and_arithmetic_steps_agree():
    """m = 28 steps by table lookups; the same windows forced onto the arithmetic path give the same
    windows after every step (and m = 84, where windows can leave the canvas, uses the arithmetic)."""
    rng = random.Random(5)
    windows = torch.tensor(random_windows(rng, 3000) + border_windows())
    fast, slow = Actor(len(windows)), Actor(len(windows))
    fast.windows, slow.windows = windows, windows
    slow._tables = None
    slow._windows = slow._windows.long()
    assert fast._tables and not slow._tables
    for _ in range(25):
        actions = torch.randint(NUM_ACTIONS_SUPPORTED, (len(windows),))
        assert torch.equal(fast.step(actions), slow.step(actions))
    assert Actor(3, min_box_side=84)._tables is None


# ---- the successor's inclusive actor (docs/method.md §10.7) ----


# the per-window reference above, with the successor's inclusive rules
reference_takeaction_inclusive = functools.partial(reference_takeaction, inclusive=True)


START = [0, 0, IMAGE_SIZE - 1, IMAGE_SIZE - 1]


# The successor's examples (docs/method.md §10.7): five times one action from [0, 0, 83, 83].
EXAMPLES = {
    0: [[0, 0, 66, 66], [0, 0, 52, 52], [0, 0, 41, 41], [0, 0, 32, 32], [0, 0, 27, 27]],
    4: [[8, 8, 74, 74], [14, 14, 67, 67], [19, 19, 61, 61], [23, 23, 56, 56], [26, 26, 53, 53]],
}


def make_actor(count_or_windows, m=MIN_BOX_SIDE, size=IMAGE_SIZE, device="cpu", tables=True):
    """An inclusive Actor; `tables=False` forces the arithmetic path (the one used off the canvas)."""
    windows = None if isinstance(count_or_windows, int) else torch.as_tensor(count_or_windows)
    count = count_or_windows if windows is None else len(windows)
    actor = Actor(count, min_box_side=m, image_size=size, device=device, inclusive=True)
    if windows is not None:
        actor.windows = windows
    if not tables:
        actor._tables = None
        actor._windows = actor._windows.long()
    return actor


def inclusive_random_windows(rng: random.Random, count: int, size: int = IMAGE_SIZE) -> list[list[int]]:
    """Windows with 0 <= x1 <= x2 <= size (sides 1 to size + 1, x2 = size one past the canvas)."""
    windows = []
    for _ in range(count):
        x1, y1 = rng.randrange(size + 1), rng.randrange(size + 1)
        windows.append([x1, y1, rng.randint(x1, size), rng.randint(y1, size)])
    return windows


def border_intervals(m: int = MIN_BOX_SIDE, size: int = IMAGE_SIZE) -> list[tuple[int, int]]:
    """Intervals touching or crossing the borders, of inclusive sides 1, m - 1, m, m + 1 and more."""
    last = size - 1
    intervals = [(0, last), (0, size), (1, last), (0, m - 2), (0, m - 1), (0, m), (last - m + 1, last), (last - m, last)]
    intervals += [(last - m + 2, last), (size - m, size), (last, last), (0, 0), (5, 5), (30, 30 + m - 1), (40, 40 + m // 2)]
    return [(lo, hi) for lo, hi in intervals if 0 <= lo <= hi <= size]


assert_matches_reference_inclusive = functools.partial(assert_matches_reference, inclusive=True)


def test_inclusive_starts_at_the_last_pixel():
    assert Actor(3, inclusive=True).windows.tolist() == [START] * 3
    actor = Actor(torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE), inclusive=True)
    assert actor.inclusive and actor.boxes().tolist() == [[float(v) for v in START]] * 2
    assert not Actor(1).inclusive and Actor(1).windows.tolist() == [[0, 0, IMAGE_SIZE, IMAGE_SIZE]]


@pytest.mark.parametrize("tables", [True, False])
@pytest.mark.parametrize("action", sorted(EXAMPLES))
def test_inclusive_examples_from_the_start_window(action, tables):
    actor = make_actor(1, tables=tables)
    reference = START
    for expected in EXAMPLES[action]:
        boxes = actor.takeaction(torch.tensor([action]))
        reference = reference_takeaction_inclusive(reference, action)
        assert actor.windows.tolist() == [expected] and boxes.tolist() == [[float(v) for v in expected]]
        assert reference == expected


@pytest.mark.parametrize("tables", [True, False])
def test_inclusive_examples_in_one_batch(tables):
    # Two windows, one per example action, stepped together: each follows its own sequence.
    actor = make_actor(2, tables=tables)
    for expected_0, expected_4 in zip(EXAMPLES[0], EXAMPLES[4]):
        actor.step(torch.tensor([0, 4]))
        assert actor.windows.tolist() == [expected_0, expected_4]


# [10, 20, 59, 69]: bw = bh = 50, d = 0.2, d*bw = 10.0 exactly, s = 10.
# [0, 0, 29, 40]: bw = 30, bh = 41; 30 - 6 < 28 -> d = 1 - 28/30, 41 - d*41 >= 28 keeps it; d*bw = 1.9999999999999996.
#   6: 0 - 6 < 0 -> fallback x = [0, bw - 1] = [0, 29].  1: x1 = int(1.99..96) = 1 (not 2).
# [70, 0, 83, 40]: bw = 14 < m.  5: min side, 70 + 28 >= 84 -> x1 = 83 - 28 + 1 = 56.
#   7: 83 + 2.8 >= 84 -> fallback x = [84 - 14, 83] = [70, 83], then the min side as 5.
# [55, 0, 83, 40]: bw = 29 >= m, stays.  [56, 0, 82, 40]: bw = 27 < m, 56 + 28 = 84 is not < 84 -> x1 = 82 - 27 = 55.
@pytest.mark.parametrize(
    "window, action, expected",
    [
        ([10, 20, 59, 69], 0, [10, 20, 49, 59]),
        ([10, 20, 59, 69], 4, [15, 25, 54, 64]),
        ([10, 20, 59, 69], 6, [0, 20, 49, 69]),
        ([10, 20, 59, 69], 9, [10, 30, 59, 79]),
        ([0, 0, 29, 40], 6, [0, 0, 29, 40]),
        ([0, 0, 29, 40], 1, [1, 0, 29, 37]),
        ([70, 0, 83, 40], 5, [56, 0, 83, 40]),
        ([70, 0, 83, 40], 7, [56, 0, 83, 40]),
        ([55, 0, 83, 40], 5, [55, 0, 83, 40]),
        ([56, 0, 82, 40], 5, [55, 0, 82, 40]),
    ],
)
@pytest.mark.parametrize("tables", [True, False])
def test_inclusive_hand_checked_cases(window, action, expected, tables):
    actor = make_actor([window], tables=tables)
    actor.takeaction(torch.tensor([action]))
    assert actor.windows.tolist() == [expected]
    assert reference_takeaction_inclusive(window, action) == expected


@pytest.mark.parametrize("tables", [True, False])
@pytest.mark.parametrize("m", [28, 20, 42, 2])
def test_inclusive_random_action_sequences_match_reference(m, tables):
    rng = random.Random(m)
    windows = inclusive_random_windows(rng, 1500)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(25)]
    assert_matches_reference_inclusive(windows, actions, m=m, tables=tables)


@pytest.mark.parametrize("m", [43, 84])
def test_inclusive_sides_above_half_the_canvas_use_arithmetic_and_match_reference(m):
    # 2m > W + 1: windows can leave the canvas (see test_inclusive_table_condition_is_tight), so no table.
    assert Actor(1, min_box_side=m, inclusive=True)._tables is None
    rng = random.Random(m)
    windows = inclusive_random_windows(rng, 1500)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(25)]
    assert_matches_reference_inclusive(windows, actions, m=m, tables=False)


@pytest.mark.parametrize("tables", [True, False])
def test_inclusive_sequences_from_start_window_match_reference_and_keep_side_m(tables):
    rng = random.Random(1)
    windows = [START] * 1000
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(20)]
    actor = make_actor(windows, tables=tables)
    expected = windows
    for step_actions in actions:
        actor.step(torch.tensor(step_actions))
        expected = [reference_takeaction_inclusive(w, a) for w, a in zip(expected, step_actions)]
        got = actor.windows
        assert got.tolist() == expected
        sides = got[:, 2:] - got[:, :2] + 1
        assert bool((sides >= MIN_BOX_SIDE).all()) and bool((got >= 0).all()) and bool((got <= IMAGE_SIZE - 1).all())


@pytest.mark.parametrize("tables", [True, False])
@pytest.mark.parametrize("axis", [0, 1])
def test_inclusive_every_action_from_every_interval_matches_reference(axis, tables):
    """Every (low, high) with 0 <= low <= high <= W on one axis, against border intervals on the other,
    under every action."""
    size = IMAGE_SIZE
    pairs = [(lo, hi) for lo in range(size + 1) for hi in range(lo, size + 1)]
    others = border_intervals()[::2]
    windows = []
    for lo, hi in pairs:
        for olo, ohi in others:
            windows.append([lo, olo, hi, ohi] if axis == 0 else [olo, lo, ohi, hi])
    windows = [w for w in windows for _ in range(NUM_ACTIONS_SUPPORTED)]
    actions = [i % NUM_ACTIONS_SUPPORTED for i in range(len(windows))]
    assert_matches_reference_inclusive(windows, [actions], tables=tables)


@pytest.mark.parametrize("m", [28, 20, 40])
def test_inclusive_border_windows_under_every_action_then_random_steps(m):
    rng = random.Random(7)
    intervals = border_intervals(m)
    windows = [[x1, y1, x2, y2] for x1, x2 in intervals for y1, y2 in intervals]
    windows = [w for w in windows for _ in range(NUM_ACTIONS_SUPPORTED)]
    first_actions = [i % NUM_ACTIONS_SUPPORTED for i in range(len(windows))]
    later_actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(5)]
    for tables in (True, False):
        assert_matches_reference_inclusive(windows, [first_actions] + later_actions, m=m, tables=tables)


def test_inclusive_other_image_size_matches_reference():
    rng = random.Random(3)
    windows = inclusive_random_windows(rng, 500, size=64)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(20)]
    for tables in (True, False):
        assert_matches_reference_inclusive(windows, actions, m=20, size=64, tables=tables)


def test_inclusive_table_and_arithmetic_steps_agree():
    rng = random.Random(5)
    intervals = border_intervals()
    windows = torch.tensor(inclusive_random_windows(rng, 3000) + [[a, b, c, d] for a, c in intervals for b, d in intervals])
    fast, slow = make_actor(windows), make_actor(windows, tables=False)
    assert fast._tables and not slow._tables
    for _ in range(25):
        actions = torch.randint(NUM_ACTIONS_SUPPORTED, (len(windows),))
        assert torch.equal(fast.step(actions), slow.step(actions))


@pytest.mark.parametrize("m", [28, 42, 2])
def test_inclusive_table_keeps_windows_on_the_canvas(m):
    """Every table entry that a window 0 <= low <= high <= W can look up lands on 0 <= low <= high <= W - 1,
    so lookups never leave the table (2m <= W + 1)."""
    span = IMAGE_SIZE + 1
    table = _cpu_transition_table(m, IMAGE_SIZE, True).view(2, span, span, span, 6, 2)
    low, high = torch.triu_indices(span, span)
    outcome = table[:, low, high].long()  # (2 axes, pairs, other side, code, [low, high])
    assert bool((outcome[..., 0] >= 0).all()) and bool((outcome[..., 0] <= outcome[..., 1]).all())
    assert bool((outcome[..., 1] <= IMAGE_SIZE - 1).all())
    assert bool((outcome[..., 1] - outcome[..., 0] + 1 >= m).all())


def test_inclusive_table_condition_is_tight():
    # m = 43 > (W + 1) / 2: x1 = 41, x2 = 41 has x1 + m >= W, so the min side sets x1 = 41 - 43 + 1 = -1.
    window = [41, 0, 41, 50]
    assert reference_takeaction_inclusive(window, 5, m=43) == [-1, 0, 41, 50]
    actor = make_actor([window], m=43, tables=False)
    actor.takeaction(torch.tensor([5]))
    assert actor.windows.tolist() == [[-1, 0, 41, 50]]


def test_inclusive_tables_are_cached_per_variant():
    inclusive, faithful = transition_table(28, IMAGE_SIZE, "cpu", True), transition_table(28, IMAGE_SIZE, "cpu")
    assert inclusive is not faithful and not torch.equal(inclusive, faithful)
    assert transition_table(28, IMAGE_SIZE, "cpu", True) is inclusive


def test_inclusive_every_side_m_box_is_reachable_from_the_start():
    """Breadth-first search over windows from [0, 0, 83, 83]: every window stays on the canvas with
    sides >= m, and every ground-truth-sized box [x, y, x + 27, y + 27] is reached exactly; the action
    sequence found for a few of them replays to the box under the reference."""
    size, m, base = IMAGE_SIZE, MIN_BOX_SIDE, IMAGE_SIZE + 1

    def key(windows):
        return ((windows[:, 0] * base + windows[:, 1]) * base + windows[:, 2]) * base + windows[:, 3]

    def unkey(keys):
        return torch.stack([keys // base**3, keys // base**2 % base, keys // base % base, keys % base], 1)

    start = torch.tensor([START])
    seen = torch.zeros(base**4, dtype=torch.bool)
    seen[key(start)] = True
    parents = {int(key(start)): None}  # key -> (parent key, action)
    frontier = start
    while len(frontier):
        actor = make_actor(frontier.repeat_interleave(NUM_ACTIONS_SUPPORTED, 0))
        actions = torch.arange(NUM_ACTIONS_SUPPORTED).repeat(len(frontier))
        children = actor.step(actions).long()
        keys = key(children)
        is_new = ~seen[keys]
        new_keys, first = torch.unique(keys[is_new], return_inverse=True)
        seen[new_keys] = True
        # any one parent per new window
        slot = torch.full((len(new_keys),), -1, dtype=torch.int64).scatter_(0, first, torch.nonzero(is_new).squeeze(1))
        parent_keys = key(frontier)[slot // NUM_ACTIONS_SUPPORTED]
        parents.update(zip(new_keys.tolist(), zip(parent_keys.tolist(), actions[slot].tolist())))
        frontier = unkey(new_keys)

    reached = unkey(torch.nonzero(seen).squeeze(1))
    sides = reached[:, 2:] - reached[:, :2] + 1
    assert bool((sides >= m).all()) and bool((reached >= 0).all()) and bool((reached <= size - 1).all())
    boxes = reached[(sides == m).all(1)]
    assert len(boxes) == (size - m + 1) ** 2  # every [x, y, x + 27, y + 27] with 0 <= x, y <= 56

    for box in ([0, 0, 27, 27], [37, 12, 64, 39], [56, 56, 83, 83], [1, 55, 28, 82]):
        path, node = [], int(key(torch.tensor([box])))
        while parents[node] is not None:
            node, action = parents[node]
            path.append(action)
        window = START
        for action in reversed(path):
            window = reference_takeaction_inclusive(window, action)
        assert window == box


def test_inclusive_setter_and_validation():
    actor = Actor(2, inclusive=True)
    actor.windows = torch.tensor([[10, 10, 10, 10], [0, 0, 83, 83]])  # x2 == x1 is a 1-pixel side here
    assert actor._tables
    with pytest.raises(ValueError):
        actor.windows = torch.tensor([[10, 10, 9, 20]])
    with pytest.raises(ValueError):
        Actor(1).windows = torch.tensor([[10, 10, 10, 20]])  # the 2021 actor still needs x2 > x1
    with pytest.raises(ValueError):
        actor.takeaction(torch.tensor([0, 10]))
    # Off the canvas: the arithmetic path, still the reference's windows.
    window = [-5, 3, 30, 90]
    actor.windows = torch.tensor([window])
    assert not actor._tables
    actor.takeaction(torch.tensor([5]))
    assert actor.windows.tolist() == [reference_takeaction_inclusive(window, 5)]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("tables", [True, False])
def test_inclusive_cuda_matches_cpu_and_reference(tables):
    rng = random.Random(11)
    intervals = border_intervals()
    windows = inclusive_random_windows(rng, 4000) + [[a, b, c, d] for a, c in intervals for b, d in intervals]
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(30)]
    assert_matches_reference_inclusive(windows, actions, device="cuda", tables=tables)
    gpu, cpu = make_actor(windows, device="cuda", tables=tables), make_actor(windows, tables=tables)
    assert gpu.device.type == "cuda"
    for step_actions in actions:
        step_actions = torch.tensor(step_actions)
        assert torch.equal(gpu.takeaction(step_actions.cuda()).cpu(), cpu.takeaction(step_actions))
