"""Pieces the benchmark scripts share: phase timers, the recipe runs and report lines of
bench_pretrain.py and bench_joint.py, their batch loader, and the plain-Python per-window actor of
docs/method.md §5 that bench_actor.py and bench_joint.py time against the vectorised Actor.

The scripts put the repo root and this folder on sys.path and import from here; this module only
needs torch and a few constants and the dataset of utils/.
"""

import collections
import contextlib
import functools
import os
import statistics
import time

import torch

from utils.data.clutter import IMAGE_SIZE  # noqa: E402,F401 (the scripts put the repo root on sys.path first)
from utils.data.datasets import ClutteredMNIST  # noqa: E402
from utils.data.mnist import DIGIT_SIDE  # noqa: E402,F401
from utils.localization.actions import STEP_FACTOR  # noqa: E402,F401

# ---- timing -------------------------------------------------------------------------------------


class PhaseTimer:
    """Adds the wall time of wrapped calls to named phases (seconds) and counts the calls.

    On CUDA every timed call is bracketed by torch.cuda.synchronize(), so a phase holds its kernels;
    that also serialises the GPU, which is why totals on CUDA come from separate, unwrapped runs.
    """

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.seconds, self.calls = collections.Counter(), collections.Counter()

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def wrap(self, function, phase):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            self.sync()
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.sync()
                self.seconds[phase] += time.perf_counter() - start
                self.calls[phase] += 1

        return timed


@contextlib.contextmanager
def timed_calls(timer, targets):
    """Replaces each (object, attribute, phase) in `targets` by a timed wrapper; restores on exit."""
    saved = []
    try:
        for owner, name, phase in targets:
            own = name in vars(owner)
            original = vars(owner)[name] if own else getattr(owner, name)
            saved.append((owner, name, own, original))
            setattr(owner, name, timer.wrap(original, phase))
        yield timer
    finally:
        for owner, name, own, original in reversed(saved):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


def wall_time(step, device):
    """Seconds of one call of step(), synchronised on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


# ---- the recipe runs of bench_pretrain.py and bench_joint.py ------------------------------------


def run_recipe(step, timed_targets, device, shares):
    """One run of step() with the `timed_targets()` calls timed; on CUDA also one unwrapped run for the total.

    Returns a record: the phase seconds, the entries of shares(phase seconds, total), the number of
    backbone calls ("backbone passes") and the run's time ("total").
    """
    timer = PhaseTimer(device)
    with timed_calls(timer, timed_targets()):
        total = wall_time(step, device)
    record = dict(timer.seconds)
    record.update(shares(timer.seconds, total))
    record["backbone passes"] = timer.calls["backbone"]
    record["total"] = wall_time(step, device) if device.type == "cuda" else total
    return record


def interleaved_records(steps, targets_of, device, shares, warmup, repeats):
    """`warmup` untimed runs of every recipe in `steps`, then `repeats` records of each (run_recipe)."""
    for _ in range(warmup):
        for name in steps:
            steps[name]()
    records = {name: [] for name in steps}
    for _ in range(repeats):  # interleaved, so slow drift of the machine hits both recipes alike
        for name in steps:
            records[name].append(run_recipe(steps[name], targets_of[name], device, shares))
    return records


# ---- set-up --------------------------------------------------------------------------------------


def add_data_flags(parser):
    """The last flags of bench_pretrain.py and bench_joint.py: the data (load_batch), seed and threads (pick_device)."""
    parser.add_argument("--data", default="mnist", choices=["mnist", "random"], help="images: the bundled cluttered MNIST (default) or random tensors")
    parser.add_argument("--datapath", default=os.path.join("data", "Synthesis_mnist"), help="default data/Synthesis_mnist")
    parser.add_argument("--digit", type=int, default=4, help="digit of the data (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own choice)")


def pick_device(parser, args):
    """Applies --threads and turns --device auto|cpu|cuda into a torch.device (auto: CUDA if present)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)


def load_batch(args, device, generator):
    """(images (N, 1, 84, 84), targets (N, 4)) on `device` and a line naming their source."""
    if args.data == "mnist":
        try:
            dataset = ClutteredMNIST(args.datapath, args.digit, "train")
            index = torch.randint(len(dataset), (args.batch_size,), generator=generator)  # with replacement
            images, targets = dataset[index]
            source = f"cluttered MNIST {args.datapath} digit {args.digit} train ({len(dataset)} images, {args.batch_size} drawn with replacement)"
            return images.to(device), targets.to(device), source
        except Exception as error:  # a benchmark still runs without the data files
            print(f"note: cannot load cluttered MNIST ({error}); using random images")
    images = torch.randn(args.batch_size, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    corner = torch.randint(0, IMAGE_SIZE - DIGIT_SIDE + 1, (args.batch_size, 2), generator=generator).float()
    targets = torch.cat([corner, corner + DIGIT_SIDE - 1], dim=1)  # 28x28 digit boxes, docs/method.md §1-2
    return images.to(device), targets.to(device), "random N(0, 1) images with random 28x28 target boxes"


# ---- report --------------------------------------------------------------------------------------


def print_header(device, source):
    """The report's first two lines: torch, the device (on CPU: threads, cores, load) and the data."""
    where = f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f"{device} ({torch.get_num_threads()} threads, {os.cpu_count()} cores, 1-min load average {os.getloadavg()[0]:.1f})"
    print(f"torch {torch.__version__}, device {where}")
    print(f"data: {source}")


def print_table(records, batch_size, unit, share, phase_keys):
    """Per recipe the medians over its records: time, images/s, backbone passes, shares, then its phases.

    unit: the time column's header ("s/step"); share: (header, record key, width) of the last column;
    phase_keys: the phases listed at the end.
    """
    median = lambda name, key: statistics.median(r.get(key, 0.0) for r in records[name])
    header, share_key, width = share
    print(f"{'recipe':10s} {unit:>8s} {'images/s':>9s} {'backbone':>9s} {'outside net':>12s} {header:>{width}s}")
    for name in records:
        total = median(name, "total")
        print(f"{name:10s} {total:8.3f} {batch_size / total:9.0f} {median(name, 'backbone passes'):9.0f} "
              f"{100 * median(name, 'outside share'):11.1f}% {100 * median(name, share_key):{width - 1}.1f}%")
    print(f"ratio original/project: {median('original', 'total') / median('project', 'total'):.2f}x")
    print("phase medians (s):")
    for name in records:
        phases = ", ".join(f"{key} {median(name, key):.3f}" for key in phase_keys)
        print(f"  {name:10s} {phases}")


# ---- the original's per-window Python (docs/method.md §5 actor, IoU) --------------------------------------


def python_iou(a, b):
    """IoU of two [x1, y1, x2, y2] lists, area (x2 - x1) * (y2 - y1) (the notation of docs/method.md §2, no +1)."""
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def reference_takeaction(window, action, m=28, W=84, H=84):
    """One action (ids 0-9) on one integer window [x1, y1, x2, y2]: the docs/method.md §5 table in plain Python.

    Python floats and int() truncation, as in the original; returns the new window as a list. Written
    inline (no helper calls but the clips), so the per-window baseline costs what the original's did.
    (tests/test_actions.py keeps its own, independently written reference on purpose.)
    """
    x1, y1, x2, y2 = window
    bw, bh = x2 - x1, y2 - y1
    if bw - STEP_FACTOR * bw >= m:
        d = STEP_FACTOR if bh - STEP_FACTOR * bh >= m else 1 - m / bh
    else:  # narrow: d from the width, unless that leaves the height below m
        d = 1 - m / bw
        d = 1 - m / bh if bh - d * bh < m else d
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
    if action == 6:  # move left by 0.2 * bw; blocked: to the border, one wider than a blocked move right (docs/method.md §5)
        s = STEP_FACTOR * bw
        x1, x2 = (int(x1 - s), int(x2 - s)) if x1 - s >= 0 else (0, bw)
    elif action == 7:  # move right
        s = STEP_FACTOR * bw
        x1, x2 = (int(x1 + s), int(x2 + s)) if x2 + s < W else (W - bw - 1, W - 1)
    elif action == 8:  # move up
        s = STEP_FACTOR * bh
        y1, y2 = (int(y1 - s), int(y2 - s)) if y1 - s >= 0 else (0, bh)
    elif action == 9:  # move down
        s = STEP_FACTOR * bh
        y1, y2 = (int(y1 + s), int(y2 + s)) if y2 + s < H else (H - bh - 1, H - 1)
    x1, x2 = clip_axis(x1, x2, W, m)
    y1, y2 = clip_axis(y1, y2, H, m)
    return [x1, y1, x2, y2]


def clip_axis(low, high, size, m):
    """docs/method.md §5 clip of one axis (the axes never interact, so per-axis order equals the documented)."""
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
