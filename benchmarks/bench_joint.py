"""Median time of one joint-training iteration (SPEC §7): the original's recipe vs the project's.

original: separate full forward passes everywhere: f_gt = net(images, gt) with gradients; for the
whole-image box and after each of the T steps a full net(images, boxes) without gradients (the
backbone runs T + 1 times in the rollout); the actor applied one window at a time in Python (the
SPEC §5 table, written out below); rewards, REINFORCE loss, agent step; the ordinal pair picked per
image in Python and embedded by two more full passes with gradients; triplet loss, backward, net step.
project: `utils.engine.joint_batch`: one backbone pass, every box embedded from the cached
features, the batched Actor, the same losses and optimiser steps.

Both recipes get the same batch, already on the device (data loading is left out of both), their
own copies of the same fresh net (SGD, momentum 0.9) and agent (Adam). Reports only; it never
passes or fails. Run from the repo root:
    .venv/bin/python benchmarks/bench_joint.py [--batch_size 512] [--seq_len 10] [--repeats 5]
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
from models import Agent, Net  # noqa: E402
from utils.actions import Actor  # noqa: E402
from utils.ordinal import ordinal_terms  # noqa: E402
from utils.rl import policy_loss, step_rewards  # noqa: E402

IMAGE_SIZE, DIGIT_SIDE = 84, 28
STEP_FACTOR = 0.2
START_WINDOW = [0, 0, IMAGE_SIZE, IMAGE_SIZE]  # the actor's first window (SPEC §5)
WHOLE_IMAGE_BOX = [0, 0, IMAGE_SIZE - 1, IMAGE_SIZE - 1]  # f_0's box (SPEC §6)
# Share outside the network, how it is measured: Net.features ("backbone") and Net.embed ("head")
# (net(images, rois) calls both), Agent.forward, every Tensor.backward and both optimisers' step are
# wrapped with perf_counter timers (synchronised on CUDA) while one iteration runs. The share is
# 1 - (sum of those phases) / (iteration time): box actions, rewards, returns, losses, IoUs, pair
# picking, RoI building, host<->device copies and Python overhead. Losses count as outside (they
# are a few small ops); their backward counts inside.
NET_PHASES = ("backbone", "head", "agent", "backward", "optimizer step")


# ---- timing -------------------------------------------------------------------------------------


class PhaseTimer:
    """Adds the wall time of wrapped calls to named phases (seconds) and counts the calls.

    On CUDA every timed call is bracketed by torch.cuda.synchronize(), so a phase holds its kernels;
    that also serialises the GPU, which is why totals on CUDA come from separate, unwrapped iterations.
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


def net_targets(net, agent, optimizers):
    """What counts as network time (see the comment at NET_PHASES)."""
    return [
        (net, "features", "backbone"),
        (net, "embed", "head"),
        (agent, "forward", "agent"),
        (torch.Tensor, "backward", "backward"),
        *[(optimizer, "step", "optimizer step") for optimizer in optimizers],
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


# ---- the original's per-window actor (SPEC §5) and per-item IoU ----------------------------------


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


def python_takeaction(window, action, m, size=IMAGE_SIZE):
    """One action on one integer window [x1, y1, x2, y2], the SPEC §5 table in plain Python."""
    x1, y1, x2, y2 = window
    bw, bh = x2 - x1, y2 - y1
    if bw - STEP_FACTOR * bw >= m:
        d = STEP_FACTOR if bh - STEP_FACTOR * bh >= m else 1 - m / bh
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
    if action in (6, 8):  # move left / up
        low, high, side = (x1, x2, bw) if action == 6 else (y1, y2, bh)
        s = STEP_FACTOR * side
        low, high = (int(low - s), int(high - s)) if low - s >= 0 else (0, side)
        x1, x2, y1, y2 = (low, high, y1, y2) if action == 6 else (x1, x2, low, high)
    if action in (7, 9):  # move right / down
        low, high, side = (x1, x2, bw) if action == 7 else (y1, y2, bh)
        s = STEP_FACTOR * side
        low, high = (int(low + s), int(high + s)) if high + s < size else (size - side - 1, size - 1)
        x1, x2, y1, y2 = (low, high, y1, y2) if action == 7 else (x1, x2, low, high)
    x1, x2 = clip_axis(x1, x2, size, m)
    y1, y2 = clip_axis(y1, y2, size, m)
    return [x1, y1, x2, y2]


def python_actor_step(windows, actions, m, device):
    """The original's actor: one window at a time; returns the new windows and their (N, 4) box tensor."""
    windows = [python_takeaction(window, action, m) for window, action in zip(windows, actions.tolist())]
    return windows, torch.tensor(windows, dtype=torch.float32, device=device)


def python_iou(a, b):
    """IoU of two [x1, y1, x2, y2] lists, area (x2 - x1) * (y2 - y1) (SPEC notation, no +1)."""
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def python_pick_pairs(trajectories, gts, rng, device):
    """Per image: two distinct boxes of its T + 1, their IoUs with the target, and the final box's IoU."""
    box_i, box_j, iou_i, iou_j, final_iou = [], [], [], [], []
    for trajectory, gt in zip(trajectories, gts):
        i, j = rng.sample(range(len(trajectory)), 2)
        box_i.append(trajectory[i])
        box_j.append(trajectory[j])
        iou_i.append(python_iou(trajectory[i], gt))
        iou_j.append(python_iou(trajectory[j], gt))
        final_iou.append(python_iou(trajectory[-1], gt))
    as_tensor = functools.partial(torch.tensor, dtype=torch.float32, device=device)
    return as_tensor(box_i), as_tensor(box_j), as_tensor(iou_i), as_tensor(iou_j), as_tensor(final_iou)


# ---- the two recipes -----------------------------------------------------------------------------


def original_rollout(net, agent, images, args):
    """T steps, each box embedded by a full forward pass (backbone included) without gradients.

    Returns the step embeddings (N, T + 1, D), logits (N, T, A), actions (N, T) and the per-image
    trajectories (lists of T + 1 boxes, whole image first).
    """
    n, device = images.shape[0], images.device
    windows = [list(START_WINDOW) for _ in range(n)]
    trajectories = [[list(WHOLE_IMAGE_BOX)] for _ in range(n)]
    box = torch.tensor(WHOLE_IMAGE_BOX, dtype=torch.float32, device=device).expand(n, 4)
    hidden = agent.init_hidden(n, device)
    embeddings, logits_seq, actions_seq = [], [], []
    for _ in range(args.seq_len):
        with torch.no_grad():
            embedding = net(images, box)  # a full pass: backbone and head
        embeddings.append(embedding)
        hidden, logits, actions, _ = agent(embedding, hidden)
        logits_seq.append(logits)
        actions_seq.append(actions)
        windows, box = python_actor_step(windows, actions, args.min_box_side, device)
        for trajectory, window in zip(trajectories, windows):
            trajectory.append(window)
    with torch.no_grad():
        embeddings.append(net(images, box))
    stack = functools.partial(torch.stack, dim=1)
    return stack(embeddings), stack(logits_seq), stack(actions_seq), trajectories


def original_iteration(net, agent, optimizers, images, targets, args, rng):
    """The original's joint iteration, in SPEC §7's order."""
    net_optimizer, agent_optimizer = optimizers
    f_gt = net(images, targets)  # with gradients
    embeddings, logits, actions, trajectories = original_rollout(net, agent, images, args)
    rewards, _ = step_rewards(f_gt.detach(), embeddings, args.sign, args.sparse)
    loss, _ = policy_loss(rewards, logits, actions, args.gamma, args.lamb_ent)
    agent_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    agent_optimizer.step()
    box_i, box_j, iou_i, iou_j, final_iou = python_pick_pairs(trajectories, targets.tolist(), rng, images.device)
    f_i, f_j = net(images, box_i), net(images, box_j)  # two more full passes, with gradients
    ordinal = ordinal_terms(f_gt, f_i, f_j, iou_i, iou_j, args.margin)
    net_optimizer.zero_grad(set_to_none=True)
    (args.lamb * ordinal["loss"]).backward()
    net_optimizer.step()
    # the original logged per-batch scalars with .item() (one host sync each)
    loss.item(), ordinal["loss"].item(), (final_iou >= 0.5).float().mean().item()


def project_iteration(net, agent, optimizers, images, targets, args, generator):
    with torch.enable_grad():
        utils.engine.joint_batch(net, agent, images, targets, args, generator, optimizers)


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
    """One iteration with the `timed_targets()` calls timed; on CUDA also one unwrapped iteration for the total."""
    timer = PhaseTimer(device)
    with timed_calls(timer, timed_targets()):
        total = wall_time(step, device)
    record = dict(timer.seconds)
    record["outside share"] = (total - sum(timer.seconds[phase] for phase in NET_PHASES)) / total
    record["actor share"] = timer.seconds["actor"] / total
    record["backbone passes"] = timer.calls["backbone"]
    record["total"] = wall_time(step, device) if device.type == "cuda" else total
    return record


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--batch_size", type=int, default=512, help="images per iteration (default 512)")
    add("--seq_len", type=int, default=10, help="agent steps T (default 10)")
    add("--hidden_size", type=int, default=48, help="agent hidden size (default 48)")
    add("--num_act", type=int, default=10, help="number of actions (default 10)")
    add("--min_box_side", type=int, default=28, help="actor's smallest side m (default 28)")
    add("--pooling_size", type=int, default=5, help="RoI pooling size (default 5)")
    add("--pooling_mode", default="align", choices=["align", "pool"], help="default align")
    add("--repeats", type=int, default=5, help="timed iterations per recipe (default 5)")
    add("--warmup", type=int, default=1, help="untimed iterations per recipe first (default 1)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA if present (default auto)")
    add("--lr", type=float, default=0.001, help="net SGD learning rate, momentum 0.9 (default 0.001)")
    add("--lr_ag", type=float, default=0.001, help="agent Adam learning rate (default 0.001)")
    add("--data", default="mnist", choices=["mnist", "random"], help="images: the bundled cluttered MNIST (default) or random tensors")
    add("--datapath", default=os.path.join("data", "Synthesis_mnist"), help="default data/Synthesis_mnist")
    add("--digit", type=int, default=4, help="digit of the data (default 4)")
    add("--seed", type=int, default=0, help="seed (default 0)")
    add("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own choice)")
    return parser


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)
    # the fields joint_batch reads; the rest at the original's defaults (SPEC §8), embedding reward
    engine_args = argparse.Namespace(
        seq_len=args.seq_len, num_act=args.num_act, min_box_side=args.min_box_side, norm=0, reward="embed",
        sign=0, sparse=0, gamma=0.99, lamb_ent=1.0, margin=0.0, lamb=1.0,
    )

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    images, targets, source = load_batch(args, device, torch.Generator().manual_seed(args.seed))
    net = Net(pooling_size=args.pooling_size, pooling_mode=args.pooling_mode).to(device).train()
    agent = Agent(dim=512, num_act=args.num_act, hidden_size=args.hidden_size).to(device).train()
    models = {"original": (net, agent), "project": (copy.deepcopy(net), copy.deepcopy(agent))}
    optimizers = {
        name: (torch.optim.SGD(n.parameters(), lr=args.lr, momentum=0.9), torch.optim.Adam(a.parameters(), lr=args.lr_ag))
        for name, (n, a) in models.items()
    }
    this_module = sys.modules[__name__]
    steps = {
        "original": lambda: original_iteration(*models["original"], optimizers["original"], images, targets, engine_args, rng),
        "project": lambda: project_iteration(*models["project"], optimizers["project"], images, targets, engine_args, generator),
    }
    targets_of = {
        "original": lambda: net_targets(*models["original"], optimizers["original"]) + [(this_module, "python_actor_step", "actor")],
        "project": lambda: net_targets(*models["project"], optimizers["project"]) + [(Actor, "takeaction", "actor")],
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
    print(f"batch {args.batch_size}, seq_len {args.seq_len}, hidden {args.hidden_size}, num_act {args.num_act}, "
          f"pooling {args.pooling_size} ({args.pooling_mode}); median of {args.repeats} iterations after {args.warmup} warm-up")
    print("outside net = iteration time not in Net.features / Net.embed / Agent forward, backward or optimizer.step")
    print(f"{'recipe':10s} {'s/iter':>8s} {'images/s':>9s} {'backbone':>9s} {'outside net':>12s} {'actor':>7s}")
    for name in records:
        total = median(name, "total")
        print(f"{name:10s} {total:8.3f} {args.batch_size / total:9.0f} {median(name, 'backbone passes'):9.0f} "
              f"{100 * median(name, 'outside share'):11.1f}% {100 * median(name, 'actor share'):6.1f}%")
    print(f"ratio original/project: {median('original', 'total') / median('project', 'total'):.2f}x")
    print("phase medians (s):")
    for name in records:
        phases = ", ".join(f"{key} {median(name, key):.3f}" for key in ("actor", *NET_PHASES))
        print(f"  {name:10s} {phases}")


if __name__ == "__main__":
    main()
