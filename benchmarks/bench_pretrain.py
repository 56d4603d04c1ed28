"""Median time of one ordinal-pretraining step (SPEC §4): the original's recipe vs the project's.

original: the two ordinal boxes of every item drawn in Python (SPEC §2: a fair coin, then a
`while True` rejection loop drawing one square box at a time with `random`, IoU in Python), then
three full forward passes net(images, gt), net(images, box_i), net(images, box_j) (the backbone
runs three times), the triplet loss, backward, SGD step.
project: `utils.engine.pretrain_epoch` over a one-batch loader, i.e. exactly its per-batch work:
`sample_ordinal_boxes` on the batch, one backbone pass, one head pass over the stacked RoIs,
backward, SGD step.

Both recipes get the same batch, already on the device (data loading is left out of both), and
their own copy of the same freshly initialised net. Reports only; it never passes or fails.
Run from the repo root:
    .venv/bin/python benchmarks/bench_pretrain.py [--batch_size 512] [--repeats 5] [--device auto]
"""

import argparse
import collections
import contextlib
import copy
import functools
import os
import random
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils.engine  # noqa: E402
from models import Net  # noqa: E402
from utils.ordinal import ordinal_terms  # noqa: E402

IMAGE_SIZE, MIN_SIDE, MAX_SIDE, DIGIT_SIDE = 84, 28, 84, 28
LOW_IOU, HIGH_IOU = 0.1, 0.5
# Time inside the network: forward of the backbone and of the head, every backward, the optimiser step.
NET_PHASES = ("backbone", "head", "backward", "optimizer step")


# ---- timing -------------------------------------------------------------------------------------


class PhaseTimer:
    """Adds the wall time of wrapped calls to named phases (seconds) and counts the calls.

    On CUDA every timed call is bracketed by torch.cuda.synchronize(), so a phase holds its kernels;
    that also serialises the GPU, which is why totals on CUDA come from separate, unwrapped steps.
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


def net_targets(net, optimizer):
    """What counts as network time: Net.features, Net.embed (net(x, rois) calls both), every backward, the step."""
    return [
        (net, "features", "backbone"),
        (net, "embed", "head"),
        (torch.Tensor, "backward", "backward"),
        (optimizer, "step", "optimizer step"),
    ]


def wall_time(step, device):
    """Seconds of one call of step(), synchronised on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


# ---- the original's ordinal box sampler (SPEC §2), one candidate at a time ------------------------


def python_iou(a, b):
    """IoU of two [x1, y1, x2, y2] lists, area (x2 - x1) * (y2 - y1) (SPEC notation, no +1)."""
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def python_ordinal_box(gt, rng):
    """One box: a fair coin picks IoU in [0.1, 0.5) or >= 0.5, then rejection-sample square boxes."""
    want_high = rng.random() < 0.5
    while True:
        side = rng.randint(MIN_SIDE, MAX_SIDE)
        x, y = rng.randint(0, IMAGE_SIZE - side), rng.randint(0, IMAGE_SIZE - side)
        box = [x, y, x + side - 1, y + side - 1]
        iou = python_iou(box, gt)
        if (iou >= HIGH_IOU) if want_high else (LOW_IOU <= iou < HIGH_IOU):
            return box, iou


def python_ordinal_boxes(targets, rng, device):
    """Two boxes per item, item by item (the original drew them in Dataset.__getitem__).

    targets: (N, 4) float. Returns box_i, box_j (N, 4) float32 and iou_i, iou_j (N,) on `device`.
    This is a lower bound on the original's cost: its per-item tensors and default collate are left out.
    """
    boxes_i, boxes_j, ious_i, ious_j = [], [], [], []
    for gt in targets.tolist():
        box, iou = python_ordinal_box(gt, rng)
        boxes_i.append(box)
        ious_i.append(iou)
        box, iou = python_ordinal_box(gt, rng)
        boxes_j.append(box)
        ious_j.append(iou)
    as_tensor = functools.partial(torch.tensor, dtype=torch.float32, device=device)
    return as_tensor(boxes_i), as_tensor(boxes_j), as_tensor(ious_i), as_tensor(ious_j)


# ---- the two recipes -----------------------------------------------------------------------------


def original_step(net, optimizer, images, targets, rng, margin):
    """The original's step: Python box sampling, three full forward passes, triplet loss, SGD."""
    box_i, box_j, iou_i, iou_j = python_ordinal_boxes(targets, rng, images.device)
    f_gt = net(images, targets)  # backbone pass 1
    f_i = net(images, box_i)  # backbone pass 2
    f_j = net(images, box_j)  # backbone pass 3
    terms = ordinal_terms(f_gt, f_i, f_j, iou_i, iou_j, margin)
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    optimizer.step()
    terms["loss"].item()  # the original logged loss.item() every batch (one host sync)


def project_step(net, optimizer, images, targets, generator, args):
    """pretrain_epoch on one batch: its per-batch work plus its small per-epoch bookkeeping."""
    utils.engine.pretrain_epoch(net, [(images, targets)], images.device, generator, args, 0, optimizer)


# ---- set-up and report ---------------------------------------------------------------------------


def load_batch(args, device, generator):
    """(images (N, 1, 84, 84), targets (N, 4)) on `device` and a line naming their source."""
    if args.data == "mnist":
        try:
            from utils.data import ClutteredMNIST

            dataset = ClutteredMNIST(args.datapath, args.digit, "train")
            index = torch.randint(len(dataset), (args.batch_size,), generator=generator)  # with replacement
            images, targets = dataset[index]
            source = f"cluttered MNIST {args.datapath} digit {args.digit} train ({len(dataset)} images, {args.batch_size} drawn with replacement)"
            return images.to(device), targets.to(device), source
        except Exception as error:  # a benchmark still runs without the data files
            print(f"note: cannot load cluttered MNIST ({error}); using random images")
    images = torch.randn(args.batch_size, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    corner = torch.randint(0, IMAGE_SIZE - DIGIT_SIDE + 1, (args.batch_size, 2), generator=generator).float()
    targets = torch.cat([corner, corner + DIGIT_SIDE - 1], dim=1)  # 28x28 digit boxes, SPEC §1-2
    return images.to(device), targets.to(device), "random N(0, 1) images with random 28x28 target boxes"


def run_recipe(step, timed_targets, device):
    """One step with the `timed_targets()` calls timed; on CUDA also one unwrapped step for the total."""
    timer = PhaseTimer(device)
    with timed_calls(timer, timed_targets()):
        total = wall_time(step, device)
    record = dict(timer.seconds)
    record["net"] = sum(timer.seconds[phase] for phase in NET_PHASES)
    record["outside share"] = (total - record["net"]) / total
    record["sampling share"] = timer.seconds["box sampling"] / total
    record["backbone passes"] = timer.calls["backbone"]
    record["total"] = wall_time(step, device) if device.type == "cuda" else total
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=512, help="images per step (default 512)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per recipe (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per recipe first (default 2)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA if present (default auto)")
    parser.add_argument("--pooling_size", type=int, default=5, help="RoI pooling size (default 5)")
    parser.add_argument("--pooling_mode", default="align", choices=["align", "pool"], help="default align")
    parser.add_argument("--margin", type=float, default=0.0, help="triplet margin (default 0.0)")
    parser.add_argument("--lr", type=float, default=0.001, help="SGD learning rate, momentum 0.9 (default 0.001)")
    parser.add_argument("--data", default="mnist", choices=["mnist", "random"], help="images: the bundled cluttered MNIST (default) or random tensors")
    parser.add_argument("--datapath", default=os.path.join("data", "Synthesis_mnist"), help="default data/Synthesis_mnist")
    parser.add_argument("--digit", type=int, default=4, help="digit of the data (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    images, targets, source = load_batch(args, device, torch.Generator().manual_seed(args.seed))
    net = Net(pooling_size=args.pooling_size, pooling_mode=args.pooling_mode).to(device).train()
    nets = {"original": net, "project": copy.deepcopy(net)}
    optimizers = {name: torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9) for name, model in nets.items()}
    engine_args = argparse.Namespace(max_batches=0, norm=0, margin=args.margin, log_interval=10)
    this_module = sys.modules[__name__]
    steps = {
        "original": lambda: original_step(nets["original"], optimizers["original"], images, targets, rng, args.margin),
        "project": lambda: project_step(nets["project"], optimizers["project"], images, targets, generator, engine_args),
    }
    targets_of = {
        "original": lambda: net_targets(nets["original"], optimizers["original"]) + [(this_module, "python_ordinal_boxes", "box sampling")],
        "project": lambda: net_targets(nets["project"], optimizers["project"]) + [(utils.engine, "sample_ordinal_boxes", "box sampling")],
    }

    for _ in range(args.warmup):
        for name in steps:
            steps[name]()
    records = {name: [] for name in steps}
    for _ in range(args.repeats):  # interleaved, so slow drift of the machine hits both recipes alike
        for name in steps:
            records[name].append(run_recipe(steps[name], targets_of[name], device))

    print_report(args, device, source, records)


def print_report(args, device, source, records):
    median = lambda name, key: statistics.median(r.get(key, 0.0) for r in records[name])
    where = f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f"{device} ({torch.get_num_threads()} threads, {os.cpu_count()} cores, 1-min load average {os.getloadavg()[0]:.1f})"
    print(f"torch {torch.__version__}, device {where}")
    print(f"data: {source}")
    print(f"batch {args.batch_size}, pooling {args.pooling_size} ({args.pooling_mode}), median of {args.repeats} steps after {args.warmup} warm-up steps")
    print("outside net = step time not spent in Net.features / Net.embed forward, backward or optimizer.step")
    print(f"{'recipe':10s} {'s/step':>8s} {'images/s':>9s} {'backbone':>9s} {'outside net':>12s} {'box sampling':>13s}")
    for name in records:
        total = median(name, "total")
        print(f"{name:10s} {total:8.3f} {args.batch_size / total:9.0f} {median(name, 'backbone passes'):9.0f} "
              f"{100 * median(name, 'outside share'):11.1f}% {100 * median(name, 'sampling share'):12.1f}%")
    print(f"ratio original/project: {median('original', 'total') / median('project', 'total'):.2f}x")
    print("phase medians (s):")
    for name in records:
        phases = ", ".join(f"{key} {median(name, key):.3f}" for key in ("box sampling", *NET_PHASES))
        print(f"  {name:10s} {phases}")


if __name__ == "__main__":
    main()
