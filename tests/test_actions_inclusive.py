"""The successor's actor (``Actor(..., inclusive=True)``, docs/method.md §10.7) against a plain per-window
reference written from its rules, on the table-lookup and the arithmetic paths."""

import functools
import random

import pytest
import torch
from test_actions import reference_takeaction

from utils.data.clutter import IMAGE_SIZE
from utils.localization.actions import MIN_BOX_SIDE, NUM_ACTIONS_SUPPORTED, Actor, _cpu_transition_table, transition_table

# the per-window reference of tests/test_actions.py, with the successor's inclusive rules
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


def random_windows(rng: random.Random, count: int, size: int = IMAGE_SIZE) -> list[list[int]]:
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


def assert_matches_reference(windows, action_sequence, m=MIN_BOX_SIDE, size=IMAGE_SIZE, device="cpu", tables=True):
    """Run the Actor and the reference side by side; compare windows and returned boxes after every step."""
    actor = make_actor(windows, m, size, device, tables)
    assert bool(actor._tables) == tables
    expected = [list(window) for window in windows]
    for step, actions in enumerate(action_sequence):
        before = expected
        boxes = actor.takeaction(torch.tensor(actions, device=device))
        expected = [reference_takeaction_inclusive(w, a, m, size, size) for w, a in zip(expected, actions)]
        got = actor.windows.tolist()
        if got != expected:
            i = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
            pytest.fail(f"step {step}, window {i}: {before[i]} action {actions[i]} -> {got[i]}, reference {expected[i]}")
        assert boxes.dtype == torch.float32 and boxes.device == actor.device
        assert boxes.cpu().tolist() == [[float(v) for v in w] for w in expected]
    return expected


def test_starts_at_the_last_pixel():
    assert Actor(3, inclusive=True).windows.tolist() == [START] * 3
    actor = Actor(torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE), inclusive=True)
    assert actor.inclusive and actor.boxes().tolist() == [[float(v) for v in START]] * 2
    assert not Actor(1).inclusive and Actor(1).windows.tolist() == [[0, 0, IMAGE_SIZE, IMAGE_SIZE]]


@pytest.mark.parametrize("tables", [True, False])
@pytest.mark.parametrize("action", sorted(EXAMPLES))
def test_examples_from_the_start_window(action, tables):
    actor = make_actor(1, tables=tables)
    reference = START
    for expected in EXAMPLES[action]:
        boxes = actor.takeaction(torch.tensor([action]))
        reference = reference_takeaction_inclusive(reference, action)
        assert actor.windows.tolist() == [expected] and boxes.tolist() == [[float(v) for v in expected]]
        assert reference == expected


@pytest.mark.parametrize("tables", [True, False])
def test_examples_in_one_batch(tables):
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
def test_hand_checked_cases(window, action, expected, tables):
    actor = make_actor([window], tables=tables)
    actor.takeaction(torch.tensor([action]))
    assert actor.windows.tolist() == [expected]
    assert reference_takeaction_inclusive(window, action) == expected


@pytest.mark.parametrize("tables", [True, False])
@pytest.mark.parametrize("m", [28, 20, 42, 2])
def test_random_action_sequences_match_reference(m, tables):
    rng = random.Random(m)
    windows = random_windows(rng, 1500)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(25)]
    assert_matches_reference(windows, actions, m=m, tables=tables)


@pytest.mark.parametrize("m", [43, 84])
def test_sides_above_half_the_canvas_use_arithmetic_and_match_reference(m):
    # 2m > W + 1: windows can leave the canvas (see test_table_condition_is_tight), so no table.
    assert Actor(1, min_box_side=m, inclusive=True)._tables is None
    rng = random.Random(m)
    windows = random_windows(rng, 1500)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(25)]
    assert_matches_reference(windows, actions, m=m, tables=False)


@pytest.mark.parametrize("tables", [True, False])
def test_sequences_from_start_window_match_reference_and_keep_side_m(tables):
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
def test_every_action_from_every_interval_matches_reference(axis, tables):
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
    assert_matches_reference(windows, [actions], tables=tables)


@pytest.mark.parametrize("m", [28, 20, 40])
def test_border_windows_under_every_action_then_random_steps(m):
    rng = random.Random(7)
    intervals = border_intervals(m)
    windows = [[x1, y1, x2, y2] for x1, x2 in intervals for y1, y2 in intervals]
    windows = [w for w in windows for _ in range(NUM_ACTIONS_SUPPORTED)]
    first_actions = [i % NUM_ACTIONS_SUPPORTED for i in range(len(windows))]
    later_actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(5)]
    for tables in (True, False):
        assert_matches_reference(windows, [first_actions] + later_actions, m=m, tables=tables)


def test_other_image_size_matches_reference():
    rng = random.Random(3)
    windows = random_windows(rng, 500, size=64)
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(20)]
    for tables in (True, False):
        assert_matches_reference(windows, actions, m=20, size=64, tables=tables)


def test_table_and_arithmetic_steps_agree():
    rng = random.Random(5)
    intervals = border_intervals()
    windows = torch.tensor(random_windows(rng, 3000) + [[a, b, c, d] for a, c in intervals for b, d in intervals])
    fast, slow = make_actor(windows), make_actor(windows, tables=False)
    assert fast._tables and not slow._tables
    for _ in range(25):
        actions = torch.randint(NUM_ACTIONS_SUPPORTED, (len(windows),))
        assert torch.equal(fast.step(actions), slow.step(actions))


@pytest.mark.parametrize("m", [28, 42, 2])
def test_table_keeps_windows_on_the_canvas(m):
    """Every table entry that a window 0 <= low <= high <= W can look up lands on 0 <= low <= high <= W - 1,
    so lookups never leave the table (2m <= W + 1)."""
    span = IMAGE_SIZE + 1
    table = _cpu_transition_table(m, IMAGE_SIZE, True).view(2, span, span, span, 6, 2)
    low, high = torch.triu_indices(span, span)
    outcome = table[:, low, high].long()  # (2 axes, pairs, other side, code, [low, high])
    assert bool((outcome[..., 0] >= 0).all()) and bool((outcome[..., 0] <= outcome[..., 1]).all())
    assert bool((outcome[..., 1] <= IMAGE_SIZE - 1).all())
    assert bool((outcome[..., 1] - outcome[..., 0] + 1 >= m).all())


def test_table_condition_is_tight():
    # m = 43 > (W + 1) / 2: x1 = 41, x2 = 41 has x1 + m >= W, so the min side sets x1 = 41 - 43 + 1 = -1.
    window = [41, 0, 41, 50]
    assert reference_takeaction_inclusive(window, 5, m=43) == [-1, 0, 41, 50]
    actor = make_actor([window], m=43, tables=False)
    actor.takeaction(torch.tensor([5]))
    assert actor.windows.tolist() == [[-1, 0, 41, 50]]


def test_tables_are_cached_per_variant():
    inclusive, faithful = transition_table(28, IMAGE_SIZE, "cpu", True), transition_table(28, IMAGE_SIZE, "cpu")
    assert inclusive is not faithful and not torch.equal(inclusive, faithful)
    assert transition_table(28, IMAGE_SIZE, "cpu", True) is inclusive


def test_every_side_m_box_is_reachable_from_the_start():
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


def test_setter_and_validation():
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("tables", [True, False])
def test_cuda_matches_cpu_and_reference(tables):
    rng = random.Random(11)
    intervals = border_intervals()
    windows = random_windows(rng, 4000) + [[a, b, c, d] for a, c in intervals for b, d in intervals]
    actions = [[rng.randrange(NUM_ACTIONS_SUPPORTED) for _ in windows] for _ in range(30)]
    assert_matches_reference(windows, actions, device="cuda", tables=tables)
    gpu, cpu = make_actor(windows, device="cuda", tables=tables), make_actor(windows, tables=tables)
    assert gpu.device.type == "cuda"
    for step_actions in actions:
        step_actions = torch.tensor(step_actions)
        assert torch.equal(gpu.takeaction(step_actions.cuda()).cpu(), cpu.takeaction(step_actions))
