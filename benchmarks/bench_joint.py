"""Median time of one joint-training iteration (docs/method.md §7): the original's recipe vs the project's.

original: separate full forward passes everywhere: f_gt = net(images, gt) with gradients; for the
whole-image box and after each of the T steps a full net(images, boxes) without gradients (the
backbone runs T + 1 times in the rollout); the actor applied one window at a time in Python (the
docs/method.md §5 table, written out in benchmarks/common.py); rewards, REINFORCE loss, agent step; the
ordinal pair picked per image in Python and embedded by two more full passes with gradients;
triplet loss, backward, net step.
project: `utils.method2021.epochs.joint_batch`: one backbone pass, every box embedded from the cached
features, the batched Actor, the same losses and optimiser steps.

Both recipes get the same batch, already on the device (data loading is left out of both), their
own copies of the same fresh net (SGD, momentum 0.9) and agent (Adam). Reports only; it never
passes or fails. Run from the repo root:
    .venv/bin/python benchmarks/bench_joint.py [--batch_size 512] [--seq_len 10] [--repeats 5]
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
from common import (  # noqa: E402
    IMAGE_SIZE,
    add_data_flags,
    interleaved_records,
    load_batch,
    pick_device,
    print_header,
    print_table,
    python_iou,
    reference_takeaction,
)

import utils.method2021.epochs  # noqa: E402
from models import Agent, Net  # noqa: E402
from utils.localization.actions import Actor  # noqa: E402
from utils.localization.ordinal import ordinal_terms  # noqa: E402
from utils.localization.rewards import policy_loss, step_rewards  # noqa: E402
from utils.localization.rollout import RolloutConfig  # noqa: E402
from utils.method2021.config import JointConfig  # noqa: E402
from utils.run.loop import make_optimizer  # noqa: E402
from utils.run.speed import Precision, compile_models  # noqa: E402

START_WINDOW = [0, 0, IMAGE_SIZE, IMAGE_SIZE]  # the actor's first window (docs/method.md §5)
WHOLE_IMAGE_BOX = [0, 0, IMAGE_SIZE - 1, IMAGE_SIZE - 1]  # f_0's box (docs/method.md §6)
# Share outside the network, how it is measured: Net.features ("backbone") and Net.embed ("head")
# (net(images, rois) calls both), Agent.forward, every Tensor.backward and both optimisers' step are
# wrapped with perf_counter timers (synchronised on CUDA) while one iteration runs. The share is
# 1 - (sum of those phases) / (iteration time): box actions, rewards, returns, losses, IoUs, pair
# picking, RoI building, host<->device copies and Python overhead. Losses count as outside (they
# are a few small ops); their backward counts inside.
NET_PHASES = ("backbone", "head", "agent", "backward", "optimizer step")


# ---- timing -------------------------------------------------------------------------------------


def net_targets(net, agent, optimizers):
    """What counts as network time (see the comment at NET_PHASES)."""
    return [
        (net, "features", "backbone"),
        (net, "embed", "head"),
        (agent, "forward", "agent"),
        (agent, "step", "agent"),
        (agent, "sequence_logits", "agent"),
        (torch.Tensor, "backward", "backward"),
        *[(optimizer, "step", "optimizer step") for optimizer in optimizers],
    ]


# ---- the original's per-window actor (docs/method.md §5) and per-item pair picking -------------------------


def python_actor_step(windows, actions, m, device):
    """The original's actor: one window at a time; returns the new windows and their (N, 4) box tensor."""
    windows = [reference_takeaction(window, action, m) for window, action in zip(windows, actions.tolist())]
    return windows, torch.tensor(windows, dtype=torch.float32, device=device)


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
    """The original's joint iteration, in docs/method.md §7's order."""
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
        utils.method2021.epochs.joint_batch(net, agent, images, targets, args, generator, optimizers)


# ---- set-up and report ---------------------------------------------------------------------------


def shares(seconds, total):
    """The record's shares of one iteration: time outside the network (see NET_PHASES), the actor."""
    return {"outside share": (total - sum(seconds[phase] for phase in NET_PHASES)) / total, "actor share": seconds["actor"] / total}


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
    add("--amp", default="none", choices=["none", "bf16"], help="the project's recipe under bf16 autocast (default none)")
    parser.add_argument("--compile", type=int, default=0, choices=[0, 1], help="1: the project's recipe with --compile 1 (default 0)")
    add_data_flags(parser)
    return parser


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    device = pick_device(parser, args)
    # the original's defaults but for the rollout's shape, embedding reward
    config = JointConfig(rollout=RolloutConfig(args.seq_len, args.num_act, args.min_box_side, precision=Precision(args.amp)))
    original_args = argparse.Namespace(seq_len=args.seq_len, min_box_side=args.min_box_side, sign=0, sparse=0, gamma=config.gamma,
                                       lamb_ent=config.lamb_ent, margin=config.margin, lamb=config.lamb)

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    images, targets, source = load_batch(args, device, torch.Generator().manual_seed(args.seed))
    net = Net(pooling_size=args.pooling_size, pooling_mode=args.pooling_mode).to(device).train()
    agent = Agent(dim=512, num_act=args.num_act, hidden_size=args.hidden_size).to(device).train()
    models = {"original": (net, agent), "project": (copy.deepcopy(net), copy.deepcopy(agent))}
    optimizers = {
        "original": (torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9), torch.optim.Adam(agent.parameters(), lr=args.lr_ag)),
        "project": (make_optimizer("SGD", models["project"][0].parameters(), args.lr),
                    make_optimizer("Adam", models["project"][1].parameters(), args.lr_ag)),
    }
    if args.compile:
        compile_models(*models["project"])
    this_module = sys.modules[__name__]
    steps = {
        "original": lambda: original_iteration(*models["original"], optimizers["original"], images, targets, original_args, rng),
        "project": lambda: project_iteration(*models["project"], optimizers["project"], images, targets, config, generator),
    }
    targets_of = {
        "original": lambda: net_targets(*models["original"], optimizers["original"]) + [(this_module, "python_actor_step", "actor")],
        "project": lambda: net_targets(*models["project"], optimizers["project"]) + [(Actor, "step", "actor")],
    }

    records = interleaved_records(steps, targets_of, device, shares, args.warmup, args.repeats)
    print_report(args, device, source, records)


def print_report(args, device, source, records):
    print_header(device, source)
    print(f"batch {args.batch_size}, seq_len {args.seq_len}, hidden {args.hidden_size}, num_act {args.num_act}, amp {args.amp}, compile {args.compile}, "
          f"pooling {args.pooling_size} ({args.pooling_mode}); median of {args.repeats} iterations after {args.warmup} warm-up")
    print("outside net = iteration time not in Net.features / Net.embed / Agent forward, backward or optimizer.step")
    print_table(records, args.batch_size, "s/iter", ("actor", "actor share", 7), ("actor", *NET_PHASES))


if __name__ == "__main__":
    main()
