"""One epoch of ordinal pretraining or of joint training (docs/method.md §4, §7), on the batch loop of
utils/run/loop.py: per batch nothing waits for the device."""

import torch

from utils.errors import SamplerError
from utils.localization.boxes import box_iou_pairs, draw_ordinal_boxes, unfinished_message
from utils.localization.ordinal import ordinal_terms
from utils.localization.rewards import REWARDS, policy_terms
from utils.localization.rollout import corloc_hits, maybe_normalize, rollout
from utils.run.loop import BatchSums, optimizer_step, run_batches


def count(mask):
    """The number of True entries, as a 0-dim float32 tensor (no host sync)."""
    return mask.sum(dtype=torch.float32)


def pretrain_epoch(net, loader, device, generator, config, epoch, optimizer=None, phase=None):
    """One pass of ordinal pretraining over `loader`; trains when `optimizer` is given, else evaluates.

    config: a PretrainConfig; `phase` prefixes the metric names (default "Train" when training, else
    "Test"). Per batch: two ordinal boxes per image, one backbone pass, one head pass over the
    ground-truth and both boxes' RoIs. Returns `{phase} Total Loss`, `Ord Acc Inst`, `Ord Acc Proto`.
    """
    training = optimizer is not None
    phase = phase or ("Train" if training else "Test")
    net.train(training)

    def step(images, targets):
        boxes, ious, unfinished = draw_ordinal_boxes(targets, num=2, generator=generator)
        with torch.set_grad_enabled(training), config.precision.autocast(device):
            sets = torch.cat([targets[None], boxes.transpose(0, 1)])  # (3, N, 4): gt, box i, box j
            f_gt, f_i, f_j = maybe_normalize(net.embed_sets(net.features(images), sets).flatten(0, 1), config.norm).view(3, len(images), -1)
        terms = ordinal_terms(f_gt, f_i, f_j, ious[:, 0], ious[:, 1], config.margin)
        if training:
            optimizer_step(optimizer, terms["loss"])
        values = {"loss": terms["loss"], "inst": count(terms["inst"]), "proto": count(terms["proto"])}
        return BatchSums(terms["loss"], len(images), values, failed=unfinished)

    meter = run_batches(loader, device, phase, epoch, config.loop, step, progress=lambda m: {"loss": f"{m.per_batch('loss'):.4f}"},
                        failure=SamplerError(unfinished_message()))
    sums, items = meter.totals(), max(meter.items, 1)
    return {
        f"{phase} Total Loss": sums["loss"] / max(meter.batches, 1),
        f"{phase} Ord Acc Inst": 100.0 * sums["inst"] / items,
        f"{phase} Ord Acc Proto": 100.0 * sums["proto"] / items,
    }


def pick_two_steps(n, steps_plus_one, device, generator=None):
    """Two distinct random indices in [0, T] per image -> (i (N,), j (N,))."""
    i = torch.randint(steps_plus_one, (n,), device=device, generator=generator)
    j = torch.randint(steps_plus_one - 1, (n,), device=device, generator=generator)
    return i, j + (j >= i).long()


def joint_batch(net, agent, images, targets, config, generator, optimizers=None, policy="sample"):
    """One batch of joint training; updates when `optimizers` = (net or None, agent) are given.
    config: a JointConfig; `policy`: see `rollout`. Returns per-batch tensors.

    The original's order: the ground-truth embedding f_gt (with gradients), the rollout, rewards,
    the agent's update, then the ordinal update with anchor f_gt. The rollout does not read f_gt,
    so f_gt and the two ordinal boxes are embedded in one head pass after it (the same values:
    one dropout draw of f_gt serves both the rewards and the triplet anchor, as in the original).
    """
    n, device = images.shape[0], images.device
    net_optimizer, agent_optimizer = optimizers if optimizers is not None else (None, None)
    autocast = config.rollout.precision.autocast
    with torch.set_grad_enabled(net_optimizer is not None), autocast(device):
        features = net.features(images)
    episode = rollout(net, agent, features, config.rollout, policy, generator)
    step_ious = box_iou_pairs(episode.boxes, targets[:, None, :])  # (N, T + 1)
    # ordinal pair: two distinct boxes of each trajectory
    pair = torch.stack(pick_two_steps(n, config.rollout.seq_len + 1, device, generator), dim=1)  # (N, 2)
    pair_ious = step_ious.gather(1, pair)
    sets = torch.cat([targets[None], episode.boxes.gather(1, pair[..., None].expand(n, 2, 4)).transpose(0, 1)])
    with torch.set_grad_enabled(net_optimizer is not None), autocast(device):
        f_gt, f_i, f_j = maybe_normalize(net.embed_sets(features, sets).flatten(0, 1), config.rollout.norm).view(3, n, -1)
    rewards = REWARDS[config.reward](f_gt.detach(), episode, targets, config)
    logits = episode.logits
    if agent_optimizer is not None:  # the episode's logits again, with gradients, in one batched pass
        with autocast(device):
            logits = agent.sequence_logits(episode.states)
    pg = policy_terms(rewards, logits, episode.actions, config.gamma, config.lamb_ent)
    if agent_optimizer is not None:
        optimizer_step(agent_optimizer, pg["loss"])
    ordinal = ordinal_terms(f_gt, f_i, f_j, pair_ious[:, 0], pair_ious[:, 1], config.margin)
    if net_optimizer is not None:
        optimizer_step(net_optimizer, config.lamb * ordinal["loss"])
    return {"policy": pg, "ordinal": ordinal, "rewards": rewards, "final_iou": step_ious[:, -1], "pair_ious": pair_ious}


def joint_values(out):
    """The sums of one batch's `joint_batch` output, by name, as 0-dim float32 tensors (some with grad:
    the meter adds them under no_grad)."""
    pg, ordinal = out["policy"], out["ordinal"]
    return {"pol": pg["policy"], "pol_ent": pg["loss"], "ent": pg["entropy"], "ord": ordinal["loss"],
            "reward_mean": out["rewards"].mean(), "episode_return": out["rewards"].sum(), "loc": count(corloc_hits(out["final_iou"])),
            "inst": count(ordinal["inst"]), "proto": count(ordinal["proto"])}


def joint_epoch(net, agent, loader, device, generator, config, epoch, optimizers=None, phase=None, policy="sample"):
    """One pass of joint training (`optimizers` given) or evaluation (no gradients, eval mode).

    config: a JointConfig; `policy` "greedy" evaluates with argmax actions (see `rollout`).
    Returns (metrics, extras); extras holds `pair_ious` (all sampled pairs' IoUs, for the IoU
    Distribution histogram) and `final_ious` (N,) of the epoch. Metric meanings (docs/method.md §8):
    `Pol Loss` the policy term, `Pol+Ent Loss` the agent's whole loss, `Ent Loss` the entropy
    (each summed over images and steps, averaged over batches); `Rewards` the mean step reward
    averaged over batches, `Episode Return` the summed reward per image.
    """
    training = optimizers is not None
    phase = phase or ("Train" if training else "Test")
    # faithful default: the net trains in train mode (dropout on) even when frozen; see JointConfig
    net.train(training and config.net_trains_in_train_mode)
    agent.train(training)
    pair_ious, final_ious = [], []

    def step(images, targets):
        with torch.set_grad_enabled(training):
            out = joint_batch(net, agent, images, targets, config, generator, optimizers, policy)
        pair_ious.append(out["pair_ious"].detach())
        final_ious.append(out["final_iou"].detach())
        return BatchSums(out["policy"]["loss"] + out["ordinal"]["loss"], len(images), joint_values(out))

    meter = run_batches(loader, device, phase, epoch, config.loop, step, progress=lambda m: {"loc": f"{m.percent_of_items('loc'):.1f}"})
    sums, batches, items = meter.totals(), max(meter.batches, 1), max(meter.items, 1)
    metrics = {
        f"{phase} Pol Loss": sums["pol"] / batches,
        f"{phase} Ord Loss": sums["ord"] / batches,
        f"{phase} Rewards": sums["reward_mean"] / batches,
        f"{phase} Loc Acc": 100.0 * sums["loc"] / items,
        f"{phase} Ent Loss": sums["ent"] / batches,
        f"{phase} Ord Acc Inst": 100.0 * sums["inst"] / items,
        f"{phase} Ord Acc Proto": 100.0 * sums["proto"] / items,
        f"{phase} Pol+Ent Loss": sums["pol_ent"] / batches,
        f"{phase} Episode Return": sums["episode_return"] / items,
    }
    return metrics, {"pair_ious": torch.cat(pair_ious).cpu(), "final_ious": torch.cat(final_ious).cpu()}
