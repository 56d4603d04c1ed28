"""One epoch of ordinal pretraining or of joint training (docs/method.md, "Ordinal pretraining",
"Joint training"). Per batch nothing waits for the device: metric sums stay on it and are read
once per `log_interval` batches (progress, non-finite check) and once per epoch."""

import torch
from tqdm import tqdm

from utils.localization.boxes import SamplerError, box_iou_pairs, draw_ordinal_boxes, unfinished_message
from utils.localization.ordinal import ordinal_terms
from utils.localization.rewards import iou_rewards, policy_terms, step_rewards
from utils.localization.rollout import corloc_hits, maybe_normalize, rollout


class NonFiniteLoss(Exception):
    """A loss became NaN or infinite; the message names the phase, epoch and batch."""


class EpochMeter:
    """Running sums of per-batch values on the device, one stacked add per batch."""

    def __init__(self, device, names):
        self.names = names
        self.sums = torch.zeros(len(names), device=device, dtype=torch.float64)
        self.first_bad_batch = torch.full((), -1, device=device, dtype=torch.long)
        self.sampler_failed = torch.zeros((), device=device, dtype=torch.bool)
        self.batches = self.items = 0

    @torch.no_grad()
    def add(self, batch_index, batch_loss, items, values, sampler_unfinished=None):
        """values: 0-dim float32 tensors in the order of `names`; a non-finite `batch_loss` marks the batch."""
        self.sums += torch.stack(values)
        bad = ~torch.isfinite(batch_loss) & (self.first_bad_batch < 0)
        self.first_bad_batch = torch.where(bad, batch_index, self.first_bad_batch)
        if sampler_unfinished is not None:
            self.sampler_failed |= sampler_unfinished
        self.batches += 1
        self.items += items

    def check(self, phase, epoch):
        """Raises NonFiniteLoss / SamplerError with one clear line (a host sync)."""
        bad = int(self.first_bad_batch)
        if bad >= 0:
            raise NonFiniteLoss(f"{phase} loss is not finite at epoch {epoch}, batch {bad}; stopping (checkpoints keep the last good state)")
        if bool(self.sampler_failed):
            raise SamplerError(unfinished_message())

    def totals(self):
        return dict(zip(self.names, self.sums.tolist()))


def iterate(loader, phase, epoch, loop):
    """Batches with a tqdm bar (phase and epoch in the description); stops after `loop.max_batches` if > 0."""
    total = min(len(loader), loop.max_batches) if loop.max_batches else len(loader)
    bar = tqdm(loader, desc=f"{phase} epoch {epoch}", total=total, leave=False, dynamic_ncols=True, disable=None)
    for batch_index, batch in enumerate(bar):
        if batch_index >= total:
            break
        yield batch_index, batch, bar


def optimizer_step(optimizer, loss):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def pretrain_epoch(net, loader, device, generator, config, epoch, optimizer=None, phase=None):
    """One pass of ordinal pretraining over `loader`; trains when `optimizer` is given, else evaluates.

    config: a PretrainConfig; `phase` prefixes the metric names (default "Train" when training, else
    "Test"). Per batch: two ordinal boxes per image, one backbone pass, one head pass over the
    ground-truth and both boxes' RoIs. Returns `{phase} Total Loss`, `Ord Acc Inst`, `Ord Acc Proto`.
    """
    training = optimizer is not None
    phase = phase or ("Train" if training else "Test")
    net.train(training)
    meter = EpochMeter(device, ("loss", "inst", "proto"))
    for batch_index, (images, targets), bar in iterate(loader, phase, epoch, config.loop):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        boxes, ious, unfinished = draw_ordinal_boxes(targets, num=2, generator=generator)
        with torch.set_grad_enabled(training), config.precision.autocast(device):
            sets = torch.cat([targets[None], boxes.transpose(0, 1)])  # (3, N, 4): gt, box i, box j
            f_gt, f_i, f_j = maybe_normalize(net.embed_sets(net.features(images), sets).flatten(0, 1), config.norm).view(3, len(images), -1)
        terms = ordinal_terms(f_gt, f_i, f_j, ious[:, 0], ious[:, 1], config.margin)
        if training:
            optimizer_step(optimizer, terms["loss"])
        meter.add(batch_index, terms["loss"], len(images), [terms["loss"], terms["inst"].sum(dtype=torch.float32),
                                                           terms["proto"].sum(dtype=torch.float32)], unfinished)
        if (batch_index + 1) % config.loop.log_interval == 0:
            meter.check(phase, epoch)
            bar.set_postfix(loss=f"{meter.sums[0].item() / meter.batches:.4f}")
    meter.check(phase, epoch)
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
    if config.reward == "iou":
        rewards = iou_rewards(step_ious)
    else:
        rewards = step_rewards(f_gt.detach(), episode.embeddings, config.sign, config.sparse)[0]
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


# per-batch sums of a joint epoch, in the order EpochMeter stacks them
JOINT_SUMS = ("pol", "pol_ent", "ent", "ord", "reward_mean", "episode_return", "loc", "inst", "proto")


def joint_values(out):
    """The JOINT_SUMS of one batch's `joint_batch` output, as 0-dim float32 tensors (some with grad:
    the meter stacks them under no_grad)."""
    pg, ordinal, count = out["policy"], out["ordinal"], lambda mask: mask.sum(dtype=torch.float32)
    return [pg["policy"], pg["loss"], pg["entropy"], ordinal["loss"], out["rewards"].mean(), out["rewards"].sum(),
            count(corloc_hits(out["final_iou"])), count(ordinal["inst"]), count(ordinal["proto"])]


def joint_epoch(net, agent, loader, device, generator, config, epoch, optimizers=None, phase=None, policy="sample"):
    """One pass of joint training (`optimizers` given) or evaluation (no gradients, eval mode).

    config: a JointConfig; `policy` "greedy" evaluates with argmax actions (see `rollout`).
    Returns (metrics, extras); extras holds `pair_ious` (all sampled pairs' IoUs, for the IoU
    Distribution histogram) and `final_ious` (N,) of the epoch. Metric meanings (docs/method.md):
    `Pol Loss` the policy term, `Pol+Ent Loss` the agent's whole loss, `Ent Loss` the entropy
    (each summed over images and steps, averaged over batches); `Rewards` the mean step reward
    averaged over batches, `Episode Return` the summed reward per image.
    """
    training = optimizers is not None
    phase = phase or ("Train" if training else "Test")
    # faithful default: the net trains in train mode (dropout on) even when frozen; see JointConfig
    net.train(training and config.net_trains_in_train_mode)
    agent.train(training)
    meter = EpochMeter(device, JOINT_SUMS)
    pair_ious, final_ious = [], []
    for batch_index, (images, targets), bar in iterate(loader, phase, epoch, config.loop):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with torch.set_grad_enabled(training):
            out = joint_batch(net, agent, images, targets, config, generator, optimizers, policy)
        meter.add(batch_index, out["policy"]["loss"] + out["ordinal"]["loss"], len(images), joint_values(out))
        pair_ious.append(out["pair_ious"].detach())
        final_ious.append(out["final_iou"].detach())
        if (batch_index + 1) % config.loop.log_interval == 0:
            meter.check(phase, epoch)
            bar.set_postfix(loc=f"{100 * meter.sums[JOINT_SUMS.index('loc')].item() / meter.items:.1f}")
    meter.check(phase, epoch)
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
