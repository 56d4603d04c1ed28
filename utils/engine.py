"""One epoch of ordinal pretraining (SPEC §4) or joint training (SPEC §7), and agent rollouts."""

import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.net import stack_rois
from utils.actions import Actor
from utils.boxes import box_iou_pairs, sample_ordinal_boxes
from utils.ordinal import ordinal_terms
from utils.rl import iou_rewards, policy_terms, step_rewards

# f_0 of SPEC §6: the whole image as an inclusive box (the actor's own window starts at 84).
WHOLE_IMAGE_BOX = (0.0, 0.0, 83.0, 83.0)
CORLOC_IOU = 0.5


class NonFiniteLoss(Exception):
    """A loss became NaN or infinite; the message names the phase, epoch and batch."""


class EpochMeter:
    """Running sums kept on the device (one host sync per log interval, not per batch)."""

    def __init__(self, device, names):
        self.sums = {name: torch.zeros((), device=device, dtype=torch.float64) for name in names}
        self.first_bad_batch = torch.full((), -1, device=device, dtype=torch.long)
        self.batches = 0

    def add(self, batch_index, batch_loss, **values):
        """Adds each value's sum; `batch_loss` non-finite marks the batch as bad."""
        bad = ~torch.isfinite(batch_loss.detach())
        self.first_bad_batch = torch.where(bad & (self.first_bad_batch < 0), batch_index, self.first_bad_batch)
        for name, value in values.items():
            self.sums[name] += value.detach().double().sum()
        self.batches += 1

    def check_finite(self, phase, epoch):
        bad = int(self.first_bad_batch)
        if bad >= 0:
            raise NonFiniteLoss(f"{phase} loss is not finite at epoch {epoch}, batch {bad}; stopping (checkpoints keep the last good state)")


def maybe_normalize(embeddings, norm):
    """`--norm 1`: L2-normalise embeddings before distances."""
    return F.normalize(embeddings, dim=1) if norm else embeddings


def iterate(loader, phase, epoch, max_batches):
    """Batches with a tqdm bar (phase and epoch in the description); stops after `max_batches` if > 0."""
    total = min(len(loader), max_batches) if max_batches else len(loader)
    bar = tqdm(loader, desc=f"{phase} epoch {epoch}", total=total, leave=False, dynamic_ncols=True, disable=None)
    for batch_index, batch in enumerate(bar):
        if batch_index >= total:
            break
        yield batch_index, batch, bar


def pretrain_epoch(net, loader, device, generator, args, epoch, optimizer=None, phase=None):
    """One pass of ordinal pretraining over `loader`; trains when `optimizer` is given, else evaluates.

    `phase` prefixes the metric names (default "Train" when training, else "Test").

    Per batch: two ordinal boxes per image, one backbone pass, one head pass over the
    ground-truth and both boxes' RoIs. Returns `{phase} Total Loss`, `Ord Acc Inst`, `Ord Acc Proto`.
    """
    training = optimizer is not None
    phase = phase or ("Train" if training else "Test")
    net.train(training)
    meter = EpochMeter(device, ("loss", "inst", "proto", "items"))
    for batch_index, (images, targets), bar in iterate(loader, phase, epoch, args.max_batches):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        n = images.shape[0]
        boxes, ious = sample_ordinal_boxes(targets, num=2, generator=generator)
        with torch.set_grad_enabled(training):
            embeddings = maybe_normalize(net(images, stack_rois(targets, boxes[:, 0], boxes[:, 1])), args.norm)
            f_gt, f_i, f_j = embeddings.split(n)
            terms = ordinal_terms(f_gt, f_i, f_j, ious[:, 0], ious[:, 1], args.margin)
        if training:
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
        meter.add(batch_index, terms["loss"], loss=terms["loss"], inst=terms["inst"], proto=terms["proto"], items=torch.tensor(n))
        if (batch_index + 1) % args.log_interval == 0:
            meter.check_finite(phase, epoch)
            bar.set_postfix(loss=f"{meter.sums['loss'].item() / meter.batches:.4f}")
    meter.check_finite(phase, epoch)
    sums = {name: value.item() for name, value in meter.sums.items()}
    items = max(sums["items"], 1)
    return {
        f"{phase} Total Loss": sums["loss"] / max(meter.batches, 1),
        f"{phase} Ord Acc Inst": 100.0 * sums["inst"] / items,
        f"{phase} Ord Acc Proto": 100.0 * sums["proto"] / items,
    }


class Episode:
    """One rollout of a batch: boxes (N, T + 1, 4) with the whole image first, embeddings
    (N, T + 1, D) or None, logits (N, T, A) or None, actions (N, T) int64."""

    def __init__(self, boxes, embeddings, logits, actions):
        self.boxes, self.embeddings, self.logits, self.actions = boxes, embeddings, logits, actions


def rollout(net, agent, features, seq_len, num_act, min_box_side, policy="sample", norm=False):
    """Runs the agent for `seq_len` steps from the whole image, all images at once.

    Each step embeds the current box from the cached `features` without gradients (the agent
    sees detached embeddings; its own graph, through the hidden state, is kept). `policy`:
    "sample" (softmax sampling, training and the original's testing), "greedy" (argmax) or
    "random" (uniform over `num_act` actions; needs no agent and computes no embeddings).
    """
    n, device = features.shape[0], features.device
    actor = Actor(n, min_box_side=min_box_side, device=device)
    box = torch.tensor(WHOLE_IMAGE_BOX, device=device).expand(n, 4)
    boxes, embeddings, logits_seq, actions_seq = [box], [], [], []
    hidden = agent.init_hidden(n, device) if agent is not None else None
    for _ in range(seq_len):
        if policy == "random":
            actions = torch.randint(num_act, (n,), device=device)
        else:
            with torch.no_grad():
                embedding = maybe_normalize(net.embed(features, box), norm)
            embeddings.append(embedding)
            hidden, logits, actions, _ = agent(embedding, hidden, greedy=policy == "greedy")
            logits_seq.append(logits)
        actions_seq.append(actions)
        box = actor.takeaction(actions)
        boxes.append(box)
    if policy != "random":
        with torch.no_grad():
            embeddings.append(maybe_normalize(net.embed(features, box), norm))
    stack = lambda seq: torch.stack(seq, dim=1) if seq else None
    return Episode(stack(boxes), stack(embeddings), stack(logits_seq), stack(actions_seq))


def pick_two_steps(n, steps_plus_one, device, generator=None):
    """Two distinct random indices in [0, T] per image -> (i (N,), j (N,))."""
    i = torch.randint(steps_plus_one, (n,), device=device, generator=generator)
    j = torch.randint(steps_plus_one - 1, (n,), device=device, generator=generator)
    return i, j + (j >= i).long()


def joint_batch(net, agent, images, targets, args, generator, optimizers=None, policy="sample"):
    """One batch of joint training (SPEC §7), in the original's order; updates when `optimizers`
    = (net or None, agent) are given. `policy`: see `rollout`. Returns per-batch tensors."""
    n = images.shape[0]
    net_optimizer, agent_optimizer = optimizers if optimizers is not None else (None, None)
    with torch.set_grad_enabled(net_optimizer is not None):
        features = net.features(images)
        f_gt = maybe_normalize(net.embed(features, targets), args.norm)
    with torch.set_grad_enabled(agent_optimizer is not None):
        episode = rollout(net, agent, features, args.seq_len, args.num_act, args.min_box_side, policy, args.norm)
        step_ious = box_iou_pairs(episode.boxes, targets[:, None, :])  # (N, T + 1)
        if args.reward == "iou":
            rewards = iou_rewards(step_ious)
        else:
            rewards = step_rewards(f_gt.detach(), episode.embeddings, args.sign, args.sparse)[0]
        pg = policy_terms(rewards, episode.logits, episode.actions, args.gamma, args.lamb_ent)
    if agent_optimizer is not None:
        agent_optimizer.zero_grad(set_to_none=True)
        pg["loss"].backward()
        agent_optimizer.step()
    # ordinal update: two distinct boxes of each trajectory, embedded from the same features
    i, j = pick_two_steps(n, args.seq_len + 1, images.device, generator)
    rows = torch.arange(n, device=images.device)
    pair_ious = torch.stack([step_ious[rows, i], step_ious[rows, j]], dim=1)
    with torch.set_grad_enabled(net_optimizer is not None):
        pair = maybe_normalize(net.embed(features, stack_rois(episode.boxes[rows, i], episode.boxes[rows, j])), args.norm)
        f_i, f_j = pair.split(n)
        ordinal = ordinal_terms(f_gt, f_i, f_j, pair_ious[:, 0], pair_ious[:, 1], args.margin)
    if net_optimizer is not None:
        net_optimizer.zero_grad(set_to_none=True)
        (args.lamb * ordinal["loss"]).backward()
        net_optimizer.step()
    return {"policy": pg, "ordinal": ordinal, "rewards": rewards, "final_iou": step_ious[:, -1], "pair_ious": pair_ious}


def joint_epoch(net, agent, loader, device, generator, args, epoch, optimizers=None, phase=None, policy="sample"):
    """One pass of joint training (`optimizers` given) or evaluation (no gradients, eval mode).

    `policy` "greedy" evaluates with argmax actions (see `rollout`).
    Returns (metrics with SPEC §7 names, extras) where extras holds `pair_ious` (all sampled
    pairs' IoUs, for the IoU Distribution histogram) and `final_ious` (N,) of the epoch.
    """
    training = optimizers is not None
    phase = phase or ("Train" if training else "Test")
    # faithful default: the net trains in train mode (dropout on) even when frozen. With
    # --frozen_net_mode eval a frozen net is a fixed feature extractor, so the agent trains on the
    # dropout-free embeddings it is tested on (measured +5-8 points test CorLoc, bundled digits).
    net.train(training and not (args.freeze and args.frozen_net_mode == "eval"))
    agent.train(training)
    meter = EpochMeter(device, ("pol", "ent", "ord", "rewards", "loc", "inst", "proto", "items"))
    pair_ious, final_ious = [], []
    for batch_index, (images, targets), bar in iterate(loader, phase, epoch, args.max_batches):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with torch.set_grad_enabled(training):
            out = joint_batch(net, agent, images, targets, args, generator, optimizers, policy)
        pg, ordinal = out["policy"], out["ordinal"]  # not `policy`: that names the rollout policy of every batch
        meter.add(batch_index, pg["loss"] + ordinal["loss"], pol=pg["loss"], ent=pg["entropy"], ord=ordinal["loss"],
                  rewards=out["rewards"], loc=out["final_iou"] >= CORLOC_IOU, inst=ordinal["inst"], proto=ordinal["proto"],
                  items=torch.tensor(images.shape[0]))
        pair_ious.append(out["pair_ious"].detach())
        final_ious.append(out["final_iou"].detach())
        if (batch_index + 1) % args.log_interval == 0:
            meter.check_finite(phase, epoch)
            bar.set_postfix(loc=f"{100 * meter.sums['loc'].item() / meter.sums['items'].item():.1f}")
    meter.check_finite(phase, epoch)
    sums = {name: value.item() for name, value in meter.sums.items()}
    batches, items = max(meter.batches, 1), max(sums["items"], 1)
    metrics = {
        f"{phase} Pol Loss": sums["pol"] / batches,
        f"{phase} Ord Loss": sums["ord"] / batches,
        f"{phase} Rewards": sums["rewards"] / items,
        f"{phase} Loc Acc": 100.0 * sums["loc"] / items,
        f"{phase} Ent Loss": sums["ent"] / batches,
        f"{phase} Ord Acc Inst": 100.0 * sums["inst"] / items,
        f"{phase} Ord Acc Proto": 100.0 * sums["proto"] / items,
    }
    return metrics, {"pair_ious": torch.cat(pair_ious).cpu(), "final_ious": torch.cat(final_ious).cpu()}
