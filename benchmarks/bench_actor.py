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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import reference_takeaction  # noqa: E402

from utils.localization.actions import NUM_ACTIONS_SUPPORTED, Actor  # noqa: E402


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
    inclusive = Actor(args.batch_size, device=device, inclusive=True)  # the successor's actor, same table path
    inclusive_ms = median_ms(inclusive.takeaction, [a.to(device) for a in random_actions(args.repeats)], device, args.warmup)
    windows = [[0, 0, 84, 84] for _ in range(args.batch_size)]
    loop_ms = median_ms(lambda a: loop_takeaction(windows, a), random_actions(args.loop_repeats), device, args.warmup)

    device_name = (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f" ({torch.get_num_threads()} threads)"
    )
    print(f"torch {torch.__version__}, device {device}{device_name}")
    print(f"N = {args.batch_size}, median ms per takeaction step")
    print(f"  vectorised Actor     {actor_ms:8.3f} ms  ({args.repeats} steps)")
    print(f"  ... inclusive=True   {inclusive_ms:8.3f} ms  ({args.repeats} steps)")
    print(f"  per-window loop (CPU) {loop_ms:7.3f} ms  ({args.loop_repeats} steps)")
    print(f"  speed-up loop/Actor  {loop_ms / actor_ms:8.1f}x")


if __name__ == "__main__":
    main()
