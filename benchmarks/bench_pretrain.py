"""Median time of one ordinal-pretraining step (docs/method.md §4): the original's recipe vs the project's.

original: the two ordinal boxes of every item drawn in Python (docs/method.md §2: a fair coin, then a
`while True` rejection loop drawing one square box at a time with `random`, IoU in Python), then
three full forward passes net(images, gt), net(images, box_i), net(images, box_j) (the backbone
runs three times), the triplet loss, backward, SGD step.
project: `utils.method2021.epochs.pretrain_epoch` over a one-batch loader, i.e. exactly its per-batch work:
`sample_ordinal_boxes` on the batch, one backbone pass, one head pass over the stacked RoIs,
backward, SGD step.

Both recipes get the same batch, already on the device (data loading is left out of both), and
their own copy of the same freshly initialised net. Reports only; it never passes or fails.
Run from the repo root:
    .venv/bin/python benchmarks/bench_pretrain.py [--batch_size 512] [--repeats 5] [--device auto]
"""

import argparse
import copy
import functools
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import IMAGE_SIZE, add_data_flags, interleaved_records, load_batch, pick_device, print_header, print_table, python_iou  # noqa: E402

import utils.method2021.epochs  # noqa: E402
from models import Net  # noqa: E402
from utils.localization.ordinal import ordinal_terms  # noqa: E402
from utils.method2021.config import PretrainConfig  # noqa: E402
from utils.run.loop import make_optimizer  # noqa: E402
from utils.run.speed import Precision, compile_models  # noqa: E402

MIN_SIDE, MAX_SIDE = 28, 84
LOW_IOU, HIGH_IOU = 0.1, 0.5
# Time inside the network: forward of the backbone and of the head, every backward, the optimiser step.
NET_PHASES = ("backbone", "head", "backward", "optimizer step")


# ---- timing -------------------------------------------------------------------------------------


def net_targets(net, optimizer):
    """What counts as network time: Net.features, Net.embed (net(x, rois) calls both), every backward, the step."""
    return [
        (net, "features", "backbone"),
        (net, "embed", "head"),
        (torch.Tensor, "backward", "backward"),
        (optimizer, "step", "optimizer step"),
    ]


# ---- the original's ordinal box sampler (docs/method.md §2), one candidate at a time ------------------------


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
    utils.method2021.epochs.pretrain_epoch(net, [(images, targets)], images.device, generator, args, 0, optimizer)


# ---- set-up and report ---------------------------------------------------------------------------


def shares(seconds, total):
    """The record's shares of one step: network time, the rest ("outside"), box sampling."""
    net = sum(seconds[phase] for phase in NET_PHASES)
    return {"net": net, "outside share": (total - net) / total, "sampling share": seconds["box sampling"] / total}


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
    parser.add_argument("--amp", default="none", choices=["none", "bf16"], help="the project's recipe under bf16 autocast (default none)")
    parser.add_argument("--compile", type=int, default=0, choices=[0, 1], help="1: the project's recipe with --compile 1 (default 0)")
    add_data_flags(parser)
    args = parser.parse_args(argv)
    device = pick_device(parser, args)

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    images, targets, source = load_batch(args, device, torch.Generator().manual_seed(args.seed))
    net = Net(pooling_size=args.pooling_size, pooling_mode=args.pooling_mode).to(device).train()
    nets = {"original": net, "project": copy.deepcopy(net)}
    optimizers = {"original": torch.optim.SGD(nets["original"].parameters(), lr=args.lr, momentum=0.9),
                  "project": make_optimizer("SGD", nets["project"].parameters(), args.lr)}
    engine_args = PretrainConfig(margin=args.margin, precision=Precision(args.amp))
    if args.compile:
        compile_models(nets["project"])
    this_module = sys.modules[__name__]
    steps = {
        "original": lambda: original_step(nets["original"], optimizers["original"], images, targets, rng, args.margin),
        "project": lambda: project_step(nets["project"], optimizers["project"], images, targets, generator, engine_args),
    }
    targets_of = {
        "original": lambda: net_targets(nets["original"], optimizers["original"]) + [(this_module, "python_ordinal_boxes", "box sampling")],
        "project": lambda: net_targets(nets["project"], optimizers["project"]) + [(utils.method2021.epochs, "draw_ordinal_boxes", "box sampling")],
    }

    records = interleaved_records(steps, targets_of, device, shares, args.warmup, args.repeats)
    print_report(args, device, source, records)


def print_report(args, device, source, records):
    print_header(device, source)
    print(f"batch {args.batch_size}, pooling {args.pooling_size} ({args.pooling_mode}), amp {args.amp}, compile {args.compile}, median of {args.repeats} steps after {args.warmup} warm-up steps")
    print("outside net = step time not spent in Net.features / Net.embed forward, backward or optimizer.step")
    print_table(records, args.batch_size, "s/step", ("box sampling", "sampling share", 13), ("box sampling", *NET_PHASES))


if __name__ == "__main__":
    main()
