"""utils/localization/actions.py (Actor) on real photographs: the successor's actor (``inclusive=True``)
at W = 224, m = 40 with the original's 14 actions (ids 10-13 change the aspect ratio), against a plain
per-window reference written from the action tables (module docstring, docs/method.md §5 and §10.7),
hand-worked examples, and the rule that only small MNIST-sized 10-action actors build a transition table."""

import random

import pytest
import torch

from utils.localization import actions as actions_module
from utils.localization.actions import (
    ACTION_NAMES,
    SHAPE_ACTION_NAMES,
    NUM_ACTIONS_MAX,
    NUM_ACTIONS_SUPPORTED,
    Actor,
    _cpu_transition_table,
    _device_table,
)

SIZE, M = 224, 40
START = [0, 0, SIZE - 1, SIZE - 1]
RATIO_MAX, RATIO_MIN = 3.0, 0.3


def reference_step(window: list[int], action: int, m: int = M, W: int = SIZE) -> list[int]:
    """One action of the successor's actor (inclusive sides) on one window, ids 0..13, with Python
    floats and int() truncation; H = W."""
    H, s = W, 0.2
    x1, y1, x2, y2 = window
    bw, bh = x2 - x1 + 1, y2 - y1 + 1
    if bw - 0.2 * bw >= m:
        d = 0.2 if bh - 0.2 * bh >= m else 1 - m / bh
    else:
        d = 1 - m / bw
        if bh - d * bh < m:
            d = 1 - m / bh

    if action == 0:  # shrink to top-left
        x2, y2 = int(x2 - d * bw), int(y2 - d * bh)
    elif action == 1:  # shrink to top-right
        x1, y2 = int(x1 + d * bw), int(y2 - d * bh)
    elif action == 2:  # shrink to bottom-left
        y1, x2 = int(y1 + d * bh), int(x2 - d * bw)
    elif action == 3:  # shrink to bottom-right
        x1, y1 = int(x1 + d * bw), int(y1 + d * bh)
    elif action == 4:  # shrink to centre
        x1, y1, x2, y2 = int(x1 + d * bw / 2), int(y1 + d * bh / 2), int(x2 - d * bw / 2), int(y2 - d * bh / 2)
    elif action == 5:  # stay
        pass
    elif action in (6, 8):  # move left / up: a blocked move slides to 0 keeping the side
        low, high, side = (x1, x2, bw) if action == 6 else (y1, y2, bh)
        step = 0.2 * side
        low, high = (int(low - step), int(high - step)) if low - step >= 0 else (0, side - 1)
        x1, x2, y1, y2 = (low, high, y1, y2) if action == 6 else (x1, x2, low, high)
    elif action in (7, 9):  # move right / down: a blocked move slides to the last pixel
        low, high, side = (x1, x2, bw) if action == 7 else (y1, y2, bh)
        step = 0.2 * side
        low, high = (int(low + step), int(high + step)) if high + step < W else (W - side, W - 1)
        x1, x2, y1, y2 = (low, high, y1, y2) if action == 7 else (x1, x2, low, high)
    elif action == 10:  # taller
        if bh * (1 + s) <= H:
            delta = s if bh * (1 + s) / bw < RATIO_MAX else 0
        else:
            delta = 0 if H / bw > RATIO_MAX else H / bh - 1
        c = delta * bh / 2
        y1, y2 = int(y1 - c - 0.5), int(y2 + c + 0.5)
    elif action == 11:  # wider
        if bw * (1 + s) <= W:
            delta = s if bh / (bw * (1 + s)) < RATIO_MAX else 0
        else:
            delta = 0 if bh / W > RATIO_MAX else W / bw - 1
        c = delta * bw / 2
        x1, x2 = int(x1 - c - 0.5), int(x2 + c + 0.5)
    elif action == 12:  # narrower
        if bw * (1 - s) >= m:
            delta = s if bh / (bw * (1 - s)) < RATIO_MAX else 0
        else:
            delta = 0 if bh / m > RATIO_MAX else 1 - m / bw
        c = delta * bw / 2
        x1, x2 = int(x1 + c - 0.5), int(x2 - c + 0.5)
    elif action == 13:  # shorter
        if bh * (1 - s) >= m:
            delta = s if bh * (1 - s) / bw < RATIO_MAX else 0
        else:
            delta = 0 if m / bw < RATIO_MIN else 1 - m / bh
        c = delta * bh / 2
        y1, y2 = int(y1 + c - 0.5), int(y2 - c + 0.5)
    else:
        raise ValueError(action)

    # Clip, in the documented order: x1, y1, x2, y2 shifts, then the inclusive min side of x and y.
    if x1 < 0:
        x1, x2 = (0, x2 - x1) if x2 - x1 < W else (0, W - 1)
    if y1 < 0:
        y1, y2 = (0, y2 - y1) if y2 - y1 < H else (0, H - 1)
    if x2 > W - 1:
        shift = x2 - W + 1
        x1, x2 = (x1 - shift, W - 1) if x1 - shift >= 0 else (0, W - 1)
    if y2 > H - 1:
        shift = y2 - H + 1
        y1, y2 = (y1 - shift, H - 1) if y1 - shift >= 0 else (0, H - 1)
    if x2 - x1 + 1 < m:
        x1, x2 = (x1, x1 + m - 1) if x1 + m < W else (x2 - m + 1, x2)
    if y2 - y1 + 1 < m:
        y1, y2 = (y1, y1 + m - 1) if y1 + m < W else (y2 - m + 1, y2)  # faithful: W, not H
    return [x1, y1, x2, y2]


def real_actor(windows=None, count: int = 1, m: int = M, size: int = SIZE) -> Actor:
    actor = Actor(count if windows is None else len(windows), min_box_side=m, image_size=size, inclusive=True, num_actions=14)
    if windows is not None:
        actor.windows = torch.tensor(windows)
    return actor


def random_windows(rng: random.Random, count: int, size: int) -> list[list[int]]:
    """Windows with 0 <= x1 <= x2 <= size - 1 (inclusive sides 1 to size)."""
    windows = []
    for _ in range(count):
        x1, y1 = rng.randrange(size), rng.randrange(size)
        windows.append([x1, y1, rng.randint(x1, size - 1), rng.randint(y1, size - 1)])
    return windows


# From the start [0, 0, 223, 223] (bw = bh = 224, W = 224, m = 40), six times one action.
# 12: delta = 0.2 while bh/(0.8 bw) < 3, c = 22.4 -> x1 = int(21.9) = 21, x2 = int(201.1) = 201; at
#     [71, 0, 147, 223], 224/(0.8*77) = 3.6 >= R+ -> delta = 0, but x1 = int(70.5) = 70 (the half pixel).
# 13: the same on y until bh = 42: 33.6 < m, delta = 1 - 40/42 but m/bw = 0.18 < R- -> 0, y1 = int(86.5).
FROM_START = {
    0: [[0, 0, 178, 178], [0, 0, 142, 142], [0, 0, 113, 113], [0, 0, 90, 90], [0, 0, 71, 71], [0, 0, 56, 56]],
    4: [[22, 22, 200, 200], [39, 39, 182, 182], [53, 53, 167, 167], [64, 64, 155, 155], [73, 73, 145, 145], [80, 80, 137, 137]],
    12: [[21, 0, 201, 223], [38, 0, 183, 223], [52, 0, 168, 223], [63, 0, 156, 223], [71, 0, 147, 223], [70, 0, 147, 223]],
    13: [[0, 21, 223, 201], [0, 38, 223, 183], [0, 52, 223, 168], [0, 63, 223, 156], [0, 71, 223, 147], [0, 78, 223, 139],
         [0, 83, 223, 133], [0, 87, 223, 128], [0, 86, 223, 128]],
    **{action: [START] * 6 for action in (6, 7, 8, 9, 10, 11)},  # blocked at the borders; 10, 11 grow past them, clipped back
}
# From [50, 50, 149, 149] (bw = bh = 100), five times one action. 10: c = 10 -> y = [int(39.5), int(159.5)];
# at bh = 177, y1 = int(-8.2) = -8 shifts down; at bh = 213, 255.6 > H -> delta = 224/213 - 1, clipped to the whole axis.
FROM_INTERIOR = {
    10: [[50, 39, 149, 159], [50, 26, 149, 171], [50, 10, 149, 186], [50, 0, 149, 212], [50, 0, 149, 223]],
    12: [[59, 50, 139, 149], [66, 50, 131, 149], [72, 50, 124, 149], [76, 50, 119, 149], [77, 50, 117, 149]],
    13: [[50, 59, 149, 139], [50, 66, 149, 131], [50, 72, 149, 124], [50, 76, 149, 119], [50, 77, 149, 117]],
}
# 11 on a tall strip: h/(1.2 w) = 224/48 = 4.7 >= R+ -> delta = 0, and the half pixel moves x1 down by one each step.
FROM_STRIP = {11: [[99, 0, 139, 223], [98, 0, 139, 223], [97, 0, 139, 223], [96, 0, 139, 223]]}
WORKED = [(START, a, seq) for a, seq in FROM_START.items()] + [([50, 50, 149, 149], a, seq) for a, seq in FROM_INTERIOR.items()]
WORKED += [([100, 0, 139, 223], a, seq) for a, seq in FROM_STRIP.items()]


@pytest.mark.parametrize("start, action, expected", WORKED, ids=[f"{w}-{a}" for w, a, _ in WORKED])
def test_worked_examples(start, action, expected):
    actor, reference = real_actor([start]), start
    for step, window in enumerate(expected):
        boxes = actor.takeaction(torch.tensor([action]))
        reference = reference_step(reference, action)
        assert actor.windows.tolist() == [window], f"step {step}"
        assert boxes.tolist() == [[float(v) for v in window]] and reference == window


def test_worked_examples_in_one_batch():
    # Every start-window sequence side by side: each window follows its own action.
    actions = sorted(FROM_START)
    actor = real_actor([START] * len(actions))
    for step in range(6):
        actor.step(torch.tensor(actions))
        assert actor.windows.tolist() == [FROM_START[a][step] for a in actions]


@pytest.mark.parametrize("size, m, count", [(224, 40, 300), (100, 20, 300), (84, 28, 200)])
def test_random_sequences_of_all_14_actions_match_reference(size, m, count):
    rng = random.Random(size)
    windows = random_windows(rng, count, size) + [[0, 0, size - 1, size - 1]] * 20
    windows += [[0, 0, size - 1, m // 2], [size - 5, 0, size - 1, size - 1], [3, 3, 3 + m, 3 + 3 * m]]
    actor, expected = real_actor(windows, m=m, size=size), windows
    assert actor._tables is None
    for step in range(30):
        actions = [rng.randrange(NUM_ACTIONS_MAX) for _ in windows]
        boxes = actor.takeaction(torch.tensor(actions))
        before, expected = expected, [reference_step(w, a, m, size) for w, a in zip(expected, actions)]
        got = actor.windows.tolist()
        if got != expected:
            i = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
            pytest.fail(f"step {step}, window {i}: {before[i]} action {actions[i]} -> {got[i]}, reference {expected[i]}")
        assert boxes.dtype == torch.float32 and boxes.tolist() == [[float(v) for v in w] for w in expected]


def test_windows_from_the_start_stay_on_the_canvas_with_sides_at_least_m():
    rng = random.Random(1)
    actor = real_actor([START] * 300)
    for _ in range(40):
        actor.step(torch.tensor([rng.randrange(NUM_ACTIONS_MAX) for _ in range(300)]))
        windows = actor.windows
        sides = windows[:, 2:] - windows[:, :2] + 1
        assert bool((sides >= M).all()) and bool((windows >= 0).all()) and bool((windows <= SIZE - 1).all())


def test_only_small_10_action_actors_use_a_table(monkeypatch):
    with monkeypatch.context() as patch:  # a stand-in table: building the real one takes seconds
        built = []
        patch.setattr(actions_module, "transition_table", lambda *args, **kwargs: built.append(args) or torch.zeros(1, 2))
        assert Actor(1)._tables and Actor(1, inclusive=True)._tables  # MNIST: 84, 10 actions
        assert Actor(1, min_box_side=20, image_size=64, inclusive=True)._tables  # smaller than MNIST: a smaller table
        assert len(built) == 3
        assert real_actor(count=1)._tables is None and len(built) == 3
    tables_before = (_cpu_transition_table.cache_info(), _device_table.cache_info())
    for actor in (
        real_actor(count=4),
        Actor(4, min_box_side=M, image_size=SIZE, inclusive=True),  # 224 with 10 actions: no table either
        Actor(4, min_box_side=M, image_size=SIZE),
        Actor(4, inclusive=True, num_actions=14),  # 84 with 14 actions: the table holds ids 0..9 only
    ):
        assert actor._tables is None
        actor.step(torch.zeros(4, dtype=torch.int64))
    assert (_cpu_transition_table.cache_info(), _device_table.cache_info()) == tables_before


def test_num_actions_and_ids_are_checked():
    with pytest.raises(ValueError, match=r"0\.\.9"):
        Actor(2, min_box_side=M, image_size=SIZE, inclusive=True).takeaction(torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="inclusive"):
        Actor(1, num_actions=14)  # the 2021 actor has no ids 10-13
    for bad in (0, 15):
        with pytest.raises(ValueError):
            Actor(1, inclusive=True, num_actions=bad)
    actor = real_actor(count=2)
    with pytest.raises(ValueError, match=r"0\.\.13"):
        actor.takeaction(torch.tensor([13, 14]))
    with pytest.raises(ValueError, match=r"0\.\.4"):
        Actor(1, min_box_side=M, image_size=SIZE, num_actions=5).takeaction(torch.tensor([5]))
    assert actor.windows.tolist() == [START] * 2  # nothing applied
    assert actor.num_actions == 14 and Actor(1, min_box_side=M, image_size=SIZE).num_actions == NUM_ACTIONS_SUPPORTED


def test_constants_and_names():
    assert (NUM_ACTIONS_SUPPORTED, NUM_ACTIONS_MAX) == (10, 14) and len(ACTION_NAMES) == 10
    assert SHAPE_ACTION_NAMES == ("taller", "wider", "narrower", "shorter")
    from utils.actions import NUM_ACTIONS_MAX as reexported  # the stable import path

    assert reexported == NUM_ACTIONS_MAX


# each makes the host wait for a CUDA device: a value read back, a data-dependent size, a tensor made from host data
SYNC_OPS = ("aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::lift_fresh")


def test_step_of_14_actions_never_waits_for_the_device():
    actor = real_actor(count=64)
    actions = [torch.randint(10, 14, (64,), generator=torch.Generator().manual_seed(i)) for i in range(3)]
    actions.append(torch.arange(64) % NUM_ACTIONS_MAX)
    actor.step(actions[0])  # warm-up
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for step_actions in actions:
            actor.step(step_actions)
    assert {event.key: event.count for event in profile.key_averages() if event.key in SYNC_OPS} == {}
