"""Box actions of the localisation agent (docs/method.md §5), vectorised over the batch.

An :class:`Actor` holds one integer window ``[x1, y1, x2, y2]`` per image and applies one action per
image per step. The arithmetic reproduces the original per-window Python code bit for bit: updates
are computed in float64 (IEEE double, like Python floats), in the order the action table of docs/method.md §5 writes them,
and every changed coordinate is truncated toward zero, like ``int(x)`` in Python.

Two variants share the code: the 2021 actor (default) and the successor's (``inclusive=True``,
docs/method.md §10.7), which measures sides inclusively. With sides bw, bh of the window before the action::

                 2021 (default)                          inclusive=True
    sides        bw = x2 - x1, bh = y2 - y1              bw = x2 - x1 + 1, bh = y2 - y1 + 1
    start        [0, 0, W, W]                            [0, 0, W-1, W-1]

Action ids (``ACTION_NAMES[i]`` names id ``i``), the same in both::

    0 shrink top-left      x2 -= d*bw, y2 -= d*bh
    1 shrink top-right     x1 += d*bw, y2 -= d*bh
    2 shrink bottom-left   y1 += d*bh, x2 -= d*bw
    3 shrink bottom-right  x1 += d*bw, y1 += d*bh
    4 shrink centre        x1 += d*bw/2, y1 += d*bh/2, x2 -= d*bw/2, y2 -= d*bh/2
    5 stay
    6 move left            s = 0.2*bw; x1 - s >= 0 ? (x1 -= s, x2 -= s) : (x1 = 0, x2 = x2 - x1)
    7 move right           s = 0.2*bw; x2 + s < W ? (x1 += s, x2 += s) : (x1 = W-1 - (x2 - x1), x2 = W-1)
    8 move up              as 6 on y with bh
    9 move down            as 7 on y with bh, H

A blocked move slides the window to the border keeping x2 - x1: that is x2 = bw, x1 = W-bw-1 in
2021 and x2 = bw-1, x1 = W-bw inclusive. d (`shrink_amount`) is one formula of the variant's sides.
The clip is the same up to its last step, the min side: 2021 grows a window with bw < m to
x2 = x1 + m - 1 when x1 + m <= W, else x1 = x2 - m + 1 (so its sides end >= m - 1 by its own measure);
inclusive does the same with its bw and the test x1 + m < W (sides end >= m).

Ids 10-13, the original's aspect-ratio actions, exist in the successor's actor only
(``Actor(..., inclusive=True, num_actions=14)``, for its real photographs, e.g. W = 224, m = 40);
the 2021 actor and every 10-action actor reject them. ``SHAPE_ACTION_NAMES[i - 10]`` names id ``i``.
With s = 0.2, R+ = 3.0, R- = 0.3 and the inclusive sides, each sets a fraction delta, then moves both
edges of one axis by c = delta*side/2 (computed as (delta*side)/2) and a half pixel::

    10 taller    bh(1+s) <= H ? (s if bh(1+s)/bw < R+ else 0) : (0 if H/bw > R+ else H/bh - 1)
                 y1 = y1 - c - 0.5, y2 = y2 + c + 0.5 with c = delta*bh/2
    11 wider     bw(1+s) <= W ? (s if bh/(bw(1+s)) < R+ else 0) : (0 if bh/W > R+ else W/bw - 1)
                 x1 = x1 - c - 0.5, x2 = x2 + c + 0.5 with c = delta*bw/2
    12 narrower  bw(1-s) >= m ? (s if bh/(bw(1-s)) < R+ else 0) : (0 if bh/m > R+ else 1 - m/bw)
                 x1 = x1 + c - 0.5, x2 = x2 - c + 0.5 with c = delta*bw/2
    13 shorter   bh(1-s) >= m ? (s if bh(1-s)/bw < R+ else 0) : (0 if m/bw < R- else 1 - m/bh)
                 y1 = y1 + c - 0.5, y2 = y2 - c + 0.5 with c = delta*bh/2

then the same clip as ids 0-9. Kept as the original has them: 11 and 13 test R+ in their first branch
(where R- would bound the ratio from the other side), and the half pixel is added even when delta = 0,
so a blocked 10-13 step moves a low edge >= 1 down by one pixel (int(x1 - 0.5) = x1 - 1, but
int(-0.5) = 0) and the window grows by one unless that edge is at 0; the min-side step of y compares
y1 + m with W, which is H only for square images (the only ones the actor takes).

Tables: at W <= 84 (IMAGE_SIZE, cluttered MNIST), with at most 10 actions and 2m <= W + 1, a step is a
lookup in a table of every outcome built once from this arithmetic (`_uses_tables`); its size grows
as W^3 (29 MB at 84, 0.55 GB at 224), so larger images, and every 14-action actor, use the
arithmetic itself. Both paths give the same windows and never wait for the device.
"""

from __future__ import annotations

import functools
import operator

import torch

from utils.data.clutter import IMAGE_SIZE

STEP_FACTOR = 0.2  # fraction of a side that a shrink (when wide enough) or a move takes off
MIN_BOX_SIDE = 28  # default m (`--min_box_side`): windows never get narrower than about m
NUM_ACTIONS_SUPPORTED = 10  # ids 0..9, the default (MNIST: --num_act <= 10 never samples 10-13)
NUM_ACTIONS_MAX = 14  # ids 0..13: the original's aspect-ratio actions 10-13, in the successor's actor only
SHAPE_RATIO_MAX = 3.0  # R+: ids 10-13 are blocked (delta = 0) where the ratio they test reaches it
SHAPE_RATIO_MIN = 0.3  # R-: id 13 (shorter) near m is blocked where m/bw falls below it
ACTION_NAMES = [
    "shrink top-left",
    "shrink top-right",
    "shrink bottom-left",
    "shrink bottom-right",
    "shrink centre",
    "stay",
    "move left",
    "move right",
    "move up",
    "move down",
]
# Ids 10-13 (``SHAPE_ACTION_NAMES[i - 10]``), apart: ACTION_NAMES stays the default actor's 10 ids.
SHAPE_ACTION_NAMES = ("taller", "wider", "narrower", "shorter")

# What each action does to each axis, straight from the action table of docs/method.md §5: row = action id, columns = (x, y).
# "low" is x1 / y1, "high" is x2 / y2; "back" moves towards 0 (left, up), "forward" towards W (right, down).
# "aspect" is ids 10-13: low += c - 0.5, high -= c - 0.5 with a signed c (negative grows the axis).
_KEEP, _SHRINK_LOW, _SHRINK_HIGH, _SHRINK_CENTRE, _MOVE_BACK, _MOVE_FORWARD, _SHAPE = range(7)
_AXIS_UPDATES = (
    (_SHRINK_HIGH, _SHRINK_HIGH),  # 0 shrink top-left: x2 -= d*bw, y2 -= d*bh
    (_SHRINK_LOW, _SHRINK_HIGH),  # 1 shrink top-right: x1 += d*bw, y2 -= d*bh
    (_SHRINK_HIGH, _SHRINK_LOW),  # 2 shrink bottom-left: y1 += d*bh, x2 -= d*bw
    (_SHRINK_LOW, _SHRINK_LOW),  # 3 shrink bottom-right: x1 += d*bw, y1 += d*bh
    (_SHRINK_CENTRE, _SHRINK_CENTRE),  # 4 shrink centre: both sides of both axes by d*side/2
    (_KEEP, _KEEP),  # 5 stay
    (_MOVE_BACK, _KEEP),  # 6 move left
    (_MOVE_FORWARD, _KEEP),  # 7 move right
    (_KEEP, _MOVE_BACK),  # 8 move up
    (_KEEP, _MOVE_FORWARD),  # 9 move down
)
# Ids 10-13, arithmetic only: the transition tables index the 6 codes above (keys * 6 + code).
_SHAPE_AXIS_UPDATES = (
    (_KEEP, _SHAPE),  # 10 taller: y by delta*bh/2 each side
    (_SHAPE, _KEEP),  # 11 wider: x by delta*bw/2 each side
    (_SHAPE, _KEEP),  # 12 narrower
    (_KEEP, _SHAPE),  # 13 shorter
)
_TALLER, _WIDER, _NARROWER, _SHORTER = range(NUM_ACTIONS_SUPPORTED, NUM_ACTIONS_MAX)


def _truncate(values: torch.Tensor) -> torch.Tensor:
    """float64 -> int64 toward zero, exactly like Python's int() on the same double."""
    return torch.trunc(values).to(torch.int64)


def shrink_amount(bw: torch.Tensor, bh: torch.Tensor, min_box_side: int) -> torch.Tensor:
    """Shrink fraction d of docs/method.md §5 per window.

    bw, bh: (N,) float64 sides of the window before the action, as the variant measures them
    (x2 - x1, y2 - y1; inclusive: x2 - x1 + 1, y2 - y1 + 1); must be non-zero. The formula is the same
    for both variants.
    Returns (N,) float64. d is negative when a side is below m (the shrink then grows it).
    """
    m = min_box_side
    # Divide tensor by tensor: torch evaluates `scalar / tensor` as `reciprocal(tensor) * scalar`,
    # which rounds differently from Python's m / bw.
    m_tensor = torch.full_like(bw, m)
    d_from_height = 1.0 - m_tensor / bh
    d_from_width = 1.0 - m_tensor / bw
    wide = bw - STEP_FACTOR * bw >= m
    tall = bh - STEP_FACTOR * bh >= m
    d_if_wide = torch.where(tall, torch.full_like(bw, STEP_FACTOR), d_from_height)
    # faithful : when narrow, d comes from the width unless that leaves the height below m
    d_if_narrow = torch.where(bh - d_from_width * bh < m, d_from_height, d_from_width)
    return torch.where(wide, d_if_wide, d_if_narrow)


def aspect_amount(bw: torch.Tensor, bh: torch.Tensor, actions: torch.Tensor, image_size: int, min_box_side: int) -> torch.Tensor:
    """Signed fraction delta of ids 10-13 per window (module docstring), negative for taller and wider
    (they grow the axis), so every aspect action is ``low += c - 0.5, high -= c - 0.5`` with c = delta*side/2.

    bw, bh: (N,) float64 inclusive sides of the window before the action; actions: (N,) int64 ids.
    Returns (N,) float64; windows whose action is not 10-13 get any value (their codes ignore it).
    """
    s, ratio_max, ratio_min = STEP_FACTOR, SHAPE_RATIO_MAX, SHAPE_RATIO_MIN
    # Tensor by tensor, as in shrink_amount (`scalar / tensor` rounds differently from Python's);
    # tensor by scalar too: CUDA divides by a host scalar as a product with its reciprocal.
    size, m = torch.full_like(bw, image_size), torch.full_like(bw, min_box_side)
    step, zero = torch.full_like(bw, s), torch.zeros_like(bw)
    taller_bh, wider_bw = bh * (1 + s), bw * (1 + s)
    narrower_bw, shorter_bh = bw * (1 - s), bh * (1 - s)
    taller = torch.where(
        taller_bh <= size,
        torch.where(taller_bh / bw < ratio_max, step, zero),
        torch.where(size / bw > ratio_max, zero, size / bh - 1),
    )
    # faithful : 11 and 13 test R+ in their first branch, where R- would bound the ratio
    wider = torch.where(
        wider_bw <= size,
        torch.where(bh / wider_bw < ratio_max, step, zero),
        torch.where(bh / size > ratio_max, zero, size / bw - 1),
    )
    narrower = torch.where(
        narrower_bw >= m,
        torch.where(bh / narrower_bw < ratio_max, step, zero),
        torch.where(bh / m > ratio_max, zero, 1.0 - m / bw),
    )
    shorter = torch.where(
        shorter_bh >= m,
        torch.where(shorter_bh / bw < ratio_max, step, zero),
        torch.where(m / bw < ratio_min, zero, 1.0 - m / bh),
    )
    # -x is exact, so y1 + (-c) - 0.5 equals the original's y1 - c - 0.5 bit for bit
    growing = torch.where(actions == _TALLER, -taller, -wider)
    narrowing = torch.where(actions == _NARROWER, narrower, shorter)
    return torch.where(actions <= _WIDER, growing, narrowing)


def _apply_updates(lows, highs, d, updates, size, inclusive=False, aspect=None):
    """The action table on both axes at once, before clipping.

    lows, highs: (N, 2) int64, [x1, y1] and [x2, y2]; d: (N, 1) float64; updates: (N, 2) codes from
    ``_AXIS_UPDATES`` (and ``_SHAPE_AXIS_UPDATES`` when ``aspect`` is given); inclusive: the
    successor's sides (x2 - x1 + 1); aspect: None, or (N, 1) float64 signed delta of ids 10-13
    (`aspect_amount`). Returns new (lows, highs), (N, 2) int64. Sides come from the window before the action.
    """
    extents = highs - lows  # [x2 - x1, y2 - y1], int64
    sides = extents + 1 if inclusive else extents  # [bw, bh]
    lows_f, highs_f, sides_f = lows.double(), highs.double(), sides.double()
    shrink = d * sides_f
    half_shrink = shrink / 2  # (d*bw)/2: the table's left-to-right order
    step = STEP_FACTOR * sides_f

    new_lows = torch.where(updates == _SHRINK_LOW, _truncate(lows_f + shrink), lows)
    new_highs = torch.where(updates == _SHRINK_HIGH, _truncate(highs_f - shrink), highs)
    is_centre = updates == _SHRINK_CENTRE
    new_lows = torch.where(is_centre, _truncate(lows_f + half_shrink), new_lows)
    new_highs = torch.where(is_centre, _truncate(highs_f - half_shrink), new_highs)

    # Moves compare in float before truncating: x1 - s >= 0, x2 + s < W.
    fits_back = lows_f - step >= 0
    is_back = updates == _MOVE_BACK
    # A blocked move slides to the border keeping x2 - x1: x2 = bw, x1 = W - bw - 1 in 2021,
    # x2 = bw - 1, x1 = W - bw inclusive.
    # faithful : in 2021 a blocked move back sets x2 = bw (not bw - 1), one wider than a blocked move forward
    new_lows = torch.where(is_back, torch.where(fits_back, _truncate(lows_f - step), 0), new_lows)
    new_highs = torch.where(is_back, torch.where(fits_back, _truncate(highs_f - step), extents), new_highs)
    fits_forward = highs_f + step < size
    is_forward = updates == _MOVE_FORWARD
    new_lows = torch.where(is_forward, torch.where(fits_forward, _truncate(lows_f + step), size - 1 - extents), new_lows)
    new_highs = torch.where(is_forward, torch.where(fits_forward, _truncate(highs_f + step), size - 1), new_highs)
    if aspect is not None:
        change = aspect * sides_f / 2  # (delta*bw)/2, (delta*bh)/2, the original's order
        # faithful : the half pixel is added even when delta = 0 (a blocked step still widens by one)
        is_aspect = updates == _SHAPE
        new_lows = torch.where(is_aspect, _truncate(lows_f + change - 0.5), new_lows)
        new_highs = torch.where(is_aspect, _truncate(highs_f - change + 0.5), new_highs)
    return new_lows, new_highs


def _clip(low: torch.Tensor, high: torch.Tensor, size: int, min_box_side: int, inclusive: bool = False):
    """docs/method.md §5 clip, steps in order, elementwise: low, high are (N, 2) int64, [x1, y1] and [x2, y2].

    The x and y axes never interact, so clipping them side by side equals the documented order
    (x1, y1, x2, y2, x side, y side). inclusive: the successor's min-side step. Returns the clipped
    (low, high), (N, 2) int64.
    """
    # Starts before the image: shift forward if it then ends inside, else span the whole axis.
    before = low < 0
    shift = -low
    fits = high + shift < size
    low, high = (
        torch.where(before, torch.where(fits, low + shift, 0), low),
        torch.where(before, torch.where(fits, high + shift, size - 1), high),
    )
    # Ends past the last pixel: shift back if it then starts inside, else span the whole axis.
    after = high > size - 1
    shift = high - size + 1
    fits = low - shift >= 0
    low, high = (
        torch.where(after, torch.where(fits, low - shift, 0), low),
        torch.where(after, torch.where(fits, high - shift, size - 1), high),
    )
    # 2021: x2 - x1 < m, then x2 = x1 + m - 1 when x1 + m <= W.
    # faithful : a side below m is grown to m - 1 (x2 - x1 measure), not to m
    # inclusive: x2 - x1 + 1 < m, then x2 = x1 + m - 1 when x1 + m < W (integers, so the same tests
    # with m - 1 and W - 1: no extra op). Sides are measured after the shifts above.
    too_small = high - low < min_box_side - inclusive
    room_forward = low + min_box_side <= size - inclusive
    new_high = torch.where(too_small & room_forward, low + min_box_side - 1, high)
    new_low = torch.where(too_small & ~room_forward, high - min_box_side + 1, low)
    return new_low, new_high



def _uses_tables(min_box_side: int, image_size: int, inclusive: bool = False, num_actions: int = NUM_ACTIONS_SUPPORTED) -> bool:
    """Whether the actor steps by `transition_table` lookups: at most 10 actions (the table holds ids
    0-9 only), W <= 84 (IMAGE_SIZE; the table grows as W^3, 29 MB int16 at 84, 0.55 GB at 224, so real
    photographs use the arithmetic), and every window reachable from windows inside [0, W] stays inside [0, W].

    After the clip, x1 >= 0 and x2 <= W - 1; the one step that can push x1 below 0 sets
    x1 = x2 - m + 1 when x1 > W - m, which stays >= 0 when 2m <= W + 1 (m = 28, W = 84 included).

    inclusive: the same bound, now tight. From 0 <= x1 <= x2 <= W, every update keeps x1 <= x2
    (a positive shrink takes less than bw, a negative one only widens, moves translate or slide to
    a border) and the shifts keep the order, so the min-side step sees x1 <= x2 <= W - 1. It sets
    x2 = x1 + m - 1 <= W - 2 when x1 + m < W, else x1 = x2 - m + 1 >= x1 - m + 1 >= W - 2m + 1,
    which is >= 0 for every such window exactly when 2m <= W + 1 (m = 42, W = 84 still fits;
    m = 43 sends [41, y1, 41, y2] to x1 = -1). Reachable windows then satisfy 0 <= x1 <= x2 <= W - 1.
    """
    small = num_actions <= NUM_ACTIONS_SUPPORTED and image_size <= IMAGE_SIZE
    return small and 2 * min_box_side <= image_size + 1


@functools.lru_cache(maxsize=8)
def _actor_constants(image_size: int, device: str, inclusive: bool = False) -> dict:
    """Small tensors every Actor of the variant on `device` shares (made once, not per rollout)."""
    span = image_size + 1
    # key = (((axis * S + low) * S + high) * S + other side) * 6 + code, for x and y at once as
    # windows (N, 4) [x1, y1, x2, y2] @ key_weights (4, 2), plus the action's per-axis code
    a, b, c = span * span * 6, span * 6, 6
    last = image_size - 1 if inclusive else image_size  # 2021 starts one past the last pixel
    start = torch.tensor([[0, 0, last, last]], dtype=torch.int64)
    codes = torch.tensor(_AXIS_UPDATES, dtype=torch.float64) + torch.tensor([0.0, span**3 * 6])  # y: axis 1
    constants = {
        "start": start, "start_float": start.double(),
        "axis_updates": torch.tensor(_AXIS_UPDATES + _SHAPE_AXIS_UPDATES, dtype=torch.int64),  # ids 0..13
        "key_weights": torch.tensor([[a, -c], [-c, a], [b, c], [c, b]], dtype=torch.float64), "code_keys": codes,
    }
    return {name: tensor.to(device) for name, tensor in constants.items()}


@functools.lru_cache(maxsize=3)  # 29 MB each (int16)
def _cpu_transition_table(min_box_side: int, image_size: int, inclusive: bool = False) -> torch.Tensor:
    """Every outcome of one axis's update and clip, computed once with the exact float64 arithmetic
    above (`_apply_updates`, `_clip`), indexed by `key = (((axis * S + low) * S + high) * S + other) * 6 + code`.

    An axis changes independently of the other given the shrink amount d, and d depends only on the
    two sides: this axis's (high - low) and the other's (`other`); `axis` says which is the width,
    since d treats width and height differently. S = W + 1 (coordinates 0..W); `code` is the axis's
    update (`_AXIS_UPDATES`). Only windows with high > low occur (clipped sides stay >= m - 1 >= 1),
    so only those entries are computed. inclusive: the successor's rules; the key is the same (high
    - low, not the side, indexes `other`), and windows with high >= low occur. Returns
    (2 * S^3 * 6, 2) int16: the axis's new (low, high).
    """
    size, m, span = image_size, min_box_side, image_size + 1
    extents = torch.arange(span, dtype=torch.float64)  # high - low
    sides = extents + 1 if inclusive else extents.clamp(min=1)  # extent 0 never occurs in 2021
    own, other = (grid.flatten() for grid in torch.meshgrid(sides, sides, indexing="ij"))
    d = torch.stack([shrink_amount(own, other, m), shrink_amount(other, own, m)]).view(2, span, span)  # [axis, own, other]
    low, high = torch.triu_indices(span, span, offset=0 if inclusive else 1)  # every (low, high) that occurs
    table = torch.zeros(2, span, span, span, 6, 2, dtype=torch.int16)

    def outcome(lows, highs, shrink, codes):
        lows, highs = _apply_updates(lows[:, None], highs[:, None], shrink[:, None], codes[:, None], size, inclusive)
        return torch.cat(_clip(lows, highs, size, m, inclusive), dim=1).to(torch.int16)

    # keep and moves do not read d: one outcome per (low, high, code), the same for every axis and other side
    for code in (_KEEP, _MOVE_BACK, _MOVE_FORWARD):
        result = outcome(low, high, torch.zeros(len(low), dtype=torch.float64), torch.full_like(low, code))
        table[:, low, high, :, code] = result[None, :, None, :]
    # shrinks: one outcome per (axis, low, high, other side, code)
    for axis in (0, 1):
        pairs, others = torch.arange(len(low)).repeat_interleave(span), torch.arange(span).repeat(len(low))
        for code in (_SHRINK_LOW, _SHRINK_HIGH, _SHRINK_CENTRE):
            lows, highs = low[pairs], high[pairs]
            result = outcome(lows, highs, d[axis, highs - lows, others], torch.full_like(lows, code))
            table[axis, lows, highs, others, code] = result
    return table.view(-1, 2)


def transition_table(min_box_side: int, image_size: int, device, inclusive: bool = False) -> torch.Tensor:
    """`_cpu_transition_table` as float64 on `device` (built on the CPU once per process and variant)."""
    return _device_table(min_box_side, image_size, str(torch.empty(0, device=device).device), bool(inclusive))


@functools.lru_cache(maxsize=3)  # 118 MB each: float64 keeps the step at 8 ops (no conversion per step)
def _device_table(min_box_side: int, image_size: int, device: str, inclusive: bool = False) -> torch.Tensor:
    return _cpu_transition_table(min_box_side, image_size, inclusive).to(device=device, dtype=torch.float64)


class Actor:
    """One integer window per image, updated by one action per image per step .

    Args:
        images_or_batch_size: an int N, or an image batch (N, C, H, W) whose N and device are used.
        min_box_side: m, the smallest side the clip restores (`--min_box_side`).
        image_size: W = H in pixels.
        device: where the windows live; defaults to the images' device, else CPU.
        inclusive: the successor's actor (inclusive sides x2 - x1 + 1, start ``[0, 0, W-1, W-1]``,
            smallest side m); default False, the 2021 actor.
        num_actions: the ids accepted, 0..num_actions-1, in 1..14 (NUM_ACTIONS_MAX); above 10
            (ids 10-13, the aspect-ratio actions) only with ``inclusive=True``. Default 10.

    State: ``windows`` (N, 4) int64 ``[x1, y1, x2, y2]`` on ``device``, starting at ``[0, 0, W, W]``
    (inclusive: ``[0, 0, W-1, W-1]``).
    ``takeaction(actions)`` returns the (N, 4) float32 boxes after the step; ``boxes()`` gives them any time.
    """

    def __init__(
        self,
        images_or_batch_size,
        min_box_side: int = MIN_BOX_SIDE,
        image_size: int = IMAGE_SIZE,
        device=None,
        inclusive: bool = False,
        num_actions: int = NUM_ACTIONS_SUPPORTED,
    ):
        if isinstance(images_or_batch_size, torch.Tensor):
            if images_or_batch_size.dim() != 4:
                raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images_or_batch_size.shape)}")
            batch_size = images_or_batch_size.shape[0]
            device = images_or_batch_size.device if device is None else device
        else:
            batch_size = operator.index(images_or_batch_size)
        if batch_size < 0:
            raise ValueError(f"batch size must be >= 0, got {batch_size}")
        # m >= 2 keeps every clipped side >= m - 1 >= 1, so d never divides by zero.
        if not 2 <= min_box_side <= image_size:
            raise ValueError(f"min_box_side must be in [2, image_size={image_size}], got {min_box_side}")
        num_actions = operator.index(num_actions)
        if not 1 <= num_actions <= NUM_ACTIONS_MAX:
            raise ValueError(f"num_actions must be in 1..{NUM_ACTIONS_MAX}, got {num_actions}")
        if num_actions > NUM_ACTIONS_SUPPORTED and not inclusive:
            raise ValueError(f"num_actions={num_actions}: ids 10-13 exist only in the successor's actor (inclusive=True)")
        self.num_actions = num_actions
        self.min_box_side = int(min_box_side)
        self.image_size = int(image_size)
        self.inclusive = bool(inclusive)
        # resolved, so `cuda` becomes `cuda:0` as on the tensors the actor returns
        self.device = torch.empty(0, device="cpu" if device is None else device).device
        constants = _actor_constants(self.image_size, str(self.device), self.inclusive)
        self._axis_updates = constants["axis_updates"][:num_actions]  # a view: ids past num_actions fail to index
        self._aspect = num_actions > NUM_ACTIONS_SUPPORTED  # step computes delta of ids 10-13
        # Table lookups (8 ops a step) for small images, 10 actions and windows that all stay on the
        # canvas; the arithmetic path otherwise (and for windows set off the canvas). Both give identical windows.
        self._tables = _uses_tables(self.min_box_side, self.image_size, self.inclusive, num_actions) or None
        # faithful: in 2021 x2 = y2 = W is one past the last pixel; the first step's clip gives [0, 0, W-1, W-1]
        self._windows = constants["start_float" if self._tables else "start"].expand(batch_size, 4)
        if self._tables:
            self._table = transition_table(self.min_box_side, self.image_size, self.device, self.inclusive)
            self._key_weights, self._code_keys = constants["key_weights"], constants["code_keys"]

    @property
    def batch_size(self) -> int:
        return self._windows.shape[0]

    @property
    def windows(self) -> torch.Tensor:
        """(N, 4) int64 copy of the current windows ``[x1, y1, x2, y2]``, x2 inclusive."""
        return self._windows.to(torch.int64, copy=True)

    @windows.setter
    def windows(self, windows: torch.Tensor) -> None:
        """Start from given windows (tests, resuming): (N', 4) whole numbers with positive sides
        (x2 > x1, y2 > y1; inclusive: x2 >= x1, y2 >= y1)."""
        windows = torch.as_tensor(windows, device=self.device)
        if windows.dim() != 2 or windows.shape[1] != 4:
            raise ValueError(f"windows must be (N, 4), got shape {tuple(windows.shape)}")
        if windows.is_floating_point() and not torch.equal(windows, windows.trunc()):
            raise ValueError("windows must hold whole numbers")
        windows = windows.to(torch.int64).clone()
        extents = windows[:, 2:] - windows[:, :2]
        if not bool((extents >= (0 if self.inclusive else 1)).all()):
            relation = ">=" if self.inclusive else ">"
            raise ValueError(f"windows need x2 {relation} x1 and y2 {relation} y1 (d divides by the sides)")
        on_canvas = bool(((windows >= 0) & (windows <= self.image_size)).all())
        self._windows = windows
        if self._tables and on_canvas:
            self._windows = windows.double()
        elif self._tables:  # off the canvas: the arithmetic path
            self._tables = None

    def boxes(self) -> torch.Tensor:
        """(N, 4) float32 windows ``[x1, y1, x2, y2]``, ready for RoI pooling or IoU."""
        return self._windows.to(torch.float32)

    def takeaction(self, actions: torch.Tensor) -> torch.Tensor:
        """Apply ``actions`` (N,) integer ids in 0..num_actions-1, one per window, then clip.

        Returns the (N, 4) float32 boxes after the step (same values as ``windows``).
        """
        return self.step(self._checked_actions(actions))

    def step(self, actions: torch.Tensor) -> torch.Tensor:
        """``takeaction`` without checking ``actions`` ((N,) int64 ids in 0..num_actions-1 on the
        windows' device): no host sync, for the rollout, whose actions come from the agent's logits."""
        if self._tables:
            return self._table_step(actions)
        lows, highs = self._windows[:, :2], self._windows[:, 2:]
        # d, delta and the sides come from the window before the action.
        sides = (highs - lows + 1 if self.inclusive else highs - lows).double()
        d = shrink_amount(sides[:, 0], sides[:, 1], self.min_box_side).unsqueeze(1)
        aspect = None
        if self._aspect:  # 10-action actors skip these ops
            aspect = aspect_amount(sides[:, 0], sides[:, 1], actions, self.image_size, self.min_box_side).unsqueeze(1)
        updates = self._axis_updates[actions]  # (N, 2): what this action does to x and to y
        lows, highs = _apply_updates(lows, highs, d, updates, self.image_size, self.inclusive, aspect)
        lows, highs = _clip(lows, highs, self.image_size, self.min_box_side, self.inclusive)
        self._windows = torch.cat((lows, highs), dim=1)
        return self.boxes()

    def _table_step(self, actions: torch.Tensor) -> torch.Tensor:
        """The step as one lookup in `transition_table` (same windows as the arithmetic, tested).
        Windows are whole numbers in float64, so the key's product and sums are exact (float64 is
        never autocast nor TF32)."""
        keys = self._windows @ self._key_weights + self._code_keys[actions]  # (N, 2): x and y
        outcome = self._table[keys.long()]  # (N, 2 axes, [low, high])
        self._windows = outcome.transpose(1, 2).reshape(-1, 4)
        return self.boxes()

    def _checked_actions(self, actions) -> torch.Tensor:
        """(N,) int64 on the windows' device, or ValueError / TypeError."""
        actions = torch.as_tensor(actions, device=self.device)
        if actions.is_floating_point() or actions.is_complex() or actions.dtype == torch.bool:
            raise TypeError(f"actions must be integer ids, got dtype {actions.dtype}")
        if actions.shape != (self.batch_size,):
            raise ValueError(f"actions must have shape ({self.batch_size},), got {tuple(actions.shape)}")
        # One host sync per step (on CUDA); cheap next to the embedding the agent runs every step.
        if bool(((actions < 0) | (actions >= self.num_actions)).any()):
            bad = actions[(actions < 0) | (actions >= self.num_actions)].unique().tolist()
            hint = "" if self.num_actions != NUM_ACTIONS_SUPPORTED else " (10-13 need num_actions=14 and inclusive=True)"
            raise ValueError(f"action ids must be in 0..{self.num_actions - 1}{hint}, got {bad}")
        return actions.to(torch.int64)
