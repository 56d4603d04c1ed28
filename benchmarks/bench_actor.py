"""Median time per `takeaction` step: the vectorised Actor vs a per-window Python loop (the original's way).

Reports only; it never passes or fails. Run from the repo root:
    .venv/bin/python benchmarks/bench_actor.py [--batch_size 512] [--device cpu|cuda] [--repeats 200]
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils.actions import NUM_ACTIONS_SUPPORTED, Actor  # noqa: E402


def reference_takeaction(window, action, m=28, W=84, H=84):
    """One action on one window in plain Python (a copy of the tests' reference, SPEC §5)."""
    x1, y1, x2, y2 = window
    bw, bh = x2 - x1, y2 - y1
    if bw - 0.2 * bw >= m:
        d = 0.2 if bh - 0.2 * bh >= m else 1 - m / bh
    else:
        d = 1 - m / bw
        if bh - d * bh < m:
            d = 1 - m / bh
    if action in (1, 3):
        x1 = int(x1 + d * bw)
    if action in (0, 2):
        x2 = int(x2 - d * bw)
    if action in (2, 3):
        y1 = int(y1 + d * bh)
    if action in (0, 1):
        y2 = int(y2 - d * bh)
    if action == 4:
        x1, y1, x2, y2 = int(x1 + d * bw / 2), int(y1 + d * bh / 2), int(x2 - d * bw / 2), int(y2 - d * bh / 2)
    if action == 6:
        s = 0.2 * bw
        x1, x2 = (int(x1 - s), int(x2 - s)) if x1 - s >= 0 else (0, bw)
    if action == 7:
        s = 0.2 * bw
        x1, x2 = (int(x1 + s), int(x2 + s)) if x2 + s < W else (W - bw - 1, W - 1)
    if action == 8:
        s = 0.2 * bh
        y1, y2 = (int(y1 - s), int(y2 - s)) if y1 - s >= 0 else (0, bh)
    if action == 9:
        s = 0.2 * bh
        y1, y2 = (int(y1 + s), int(y2 + s)) if y2 + s < H else (H - bh - 1, H - 1)
    x1, x2 = clip_axis(x1, x2, W, m)
    y1, y2 = clip_axis(y1, y2, H, m)
    return [x1, y1, x2, y2]


def clip_axis(low, high, size, m):
    """SPEC §5 clip of one axis (the axes never interact, so per-axis order equals the SPEC's)."""
    if low < 0:
        shift = -low
        low, high = (low + shift, high + shift) if high + shift < size else (0, size - 1)
    if high > size - 1:
        shift = high - size + 1
        low, high = (low - shift, high - shift) if low - shift >= 0 else (0, size - 1)
    if high - low < m:
        if low + m <= size:
            high = low + m - 1
        else:
            low = high - m + 1
    return low, high


def loop_takeaction(windows, actions):
    """The per-window baseline: tensor in, tensor out, like Actor.takeaction, so both pay the same boundary."""
    windows[:] = [reference_takeaction(w, a) for w, a in zip(windows, actions.tolist())]
    return torch.tensor(windows, dtype=torch.float32)


def median_ms(step, action_batches, device, warmup):
    """Median wall time in ms of step(actions) over the batches, after `warmup` untimed calls."""
    for actions in action_batches[:warmup]:
        step(actions)
    times = []
    for actions in action_batches:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(actions)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=512, help="windows per step (default 512)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="default: cuda if present")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps of the Actor (default 200)")
    parser.add_argument("--loop_repeats", type=int, default=30, help="timed steps of the loop (default 30)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)

    def random_actions(count):
        return [torch.randint(NUM_ACTIONS_SUPPORTED, (args.batch_size,), generator=generator) for _ in range(count)]

    actor = Actor(args.batch_size, device=device)
    actor_ms = median_ms(actor.takeaction, [a.to(device) for a in random_actions(args.repeats)], device, args.warmup)
    windows = [[0, 0, 84, 84] for _ in range(args.batch_size)]
    loop_ms = median_ms(lambda a: loop_takeaction(windows, a), random_actions(args.loop_repeats), device, args.warmup)

    device_name = (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f" ({torch.get_num_threads()} threads)"
    )
    print(f"torch {torch.__version__}, device {device}{device_name}")
    print(f"N = {args.batch_size}, median ms per takeaction step")
    print(f"  vectorised Actor     {actor_ms:8.3f} ms  ({args.repeats} steps)")
    print(f"  per-window loop (CPU) {loop_ms:7.3f} ms  ({args.loop_repeats} steps)")
    print(f"  speed-up loop/Actor  {loop_ms / actor_ms:8.1f}x")


if __name__ == "__main__":
    main()
