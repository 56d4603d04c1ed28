"""Epochs of the successor method (docs/method.md §10.6, §10.9, §10.10): ordinal encoder pretraining with
prototypes and reconstruction, and agent training / test-time adaptation with the prototype reward.
Like utils/method2021/epochs.py, metric sums stay on the device and are read every `log_interval` batches."""

import itertools

import torch
import torch.nn.functional as F

from models.agent import gumbel_noise
from utils.localization.ordinal import ordered_correctly, triplet_loss
from utils.localization.rewards import policy_terms, step_rewards
from utils.localization.rollout import FeatureRows, batch_maps, corloc_hits, episode_noise_shape, poolable, rollout
from utils.localization.together import groups, together
from utils.run.loop import BatchSums, batches_taken, optimizer_step, run_batches
from utils.successor.anchors import draw_anchor_pairs
from utils.successor.groups import draw_group_permutation, group_prototypes, permute_groups, used_count

ACC_NAMES = {"inst": "Inst", "proto": "Proto", "inst_other": "Inst Other", "proto_other": "Proto Other"}


def count(mask):
    """The number of True entries, as a 0-dim float32 tensor (no host sync)."""
    return mask.sum(dtype=torch.float32)


def encoder_batch(encoder, images, targets, config, generator):
    """Losses and per-image correctness of one batch (cut to whole groups of K).

    One encoder pass; the reconstruction from its map; the ground truth and both anchor boxes of
    every image through the head in one pass (dropout independent per element, as three calls).
    """
    k = config.group_size
    used = used_count(images.shape[0], k)
    images, targets = images[:used], targets[:used]
    boxes, ious = draw_anchor_pairs(targets, generator)
    perm = draw_group_permutation(used // k, images.device, generator)
    with config.precision.autocast(images.device):
        features = encoder.features(images)
        reconstruction = encoder.decode(features)
        sets = torch.cat([targets[None], boxes.transpose(0, 1)])  # (3, B, 4): gt, box i, box j
        f_gt, f_i, f_j = encoder.embed_sets(features, sets).float()
    base = F.mse_loss(reconstruction.float(), images)  # faithful: Sigmoid output against the normalised image
    proto = group_prototypes(f_gt, k)
    other = lambda x: permute_groups(x, k, perm)  # the image in the same slot of group pi(g)
    f_i_o, f_j_o, iou_o = other(f_i), other(f_j), other(ious)
    own = (f_i, f_j, ious[:, 0], ious[:, 1])
    shuffled = (f_i_o, f_j_o, iou_o[:, 0], iou_o[:, 1])
    anchor = proto if config.train_mode in ("proto", "shuffle_proto") else f_gt
    pos_neg = shuffled if config.train_mode.startswith("shuffle") else own

    def distances(a, b_i, b_j, iou_i, iou_j):
        return F.pairwise_distance(a, b_i), F.pairwise_distance(a, b_j), iou_i, iou_j

    ordinal = triplet_loss(*distances(anchor, *pos_neg), config.margin)
    total = config.lamb_base * base + config.lamb * ordinal
    with torch.no_grad():
        correct = {name: ordered_correctly(*distances(a, *boxes_)) for name, a, boxes_ in
                   (("inst", f_gt, own), ("proto", proto, own), ("inst_other", f_gt, shuffled), ("proto_other", proto, shuffled))}
    return {"total": total, "base": base, "ord": ordinal, "correct": correct, "used": used,
            "images": images, "reconstruction": reconstruction}


def encoder_epoch(encoder, loader, device, generator, config, epoch, optimizer=None, phase=None):
    """One pass of encoder pretraining (trains when `optimizer` is given) -> metrics dict with the
    successor's names: `{phase} Total Loss`, `Base Loss`, `Ord Loss` (means over batches) and
    `Ord Acc Inst`, `Ord Acc Proto`, `Ord Acc Inst Other`, `Ord Acc Proto Other` (% of used images)."""
    training = optimizer is not None
    phase = phase or ("Train" if training else "Test")
    encoder.train(training)

    def step(images, targets):
        if used_count(images.shape[0], config.group_size) == 0:
            return None  # a last batch smaller than one group: no prototype
        with torch.set_grad_enabled(training):
            out = encoder_batch(encoder, images, targets, config, generator)
        if training:
            optimizer_step(optimizer, out["total"])
        values = {"total": out["total"], "base": out["base"], "ord": out["ord"]}
        values.update({key: count(out["correct"][key]) for key in ACC_NAMES})
        return BatchSums(out["total"], out["used"], values)

    meter = run_batches(loader, device, phase, epoch, config.loop, step, progress=lambda m: {"loss": f"{m.per_batch('total'):.4f}"})
    sums, batches, items = meter.totals(), max(meter.batches, 1), max(meter.items, 1)
    metrics = {f"{phase} Total Loss": sums["total"] / batches, f"{phase} Base Loss": sums["base"] / batches,
               f"{phase} Ord Loss": sums["ord"] / batches}
    for key, name in ACC_NAMES.items():
        metrics[f"{phase} Ord Acc {name}"] = 100.0 * sums[key] / items
    return metrics


def reward_anchors(encoder, features, targets, config, generator, prototype=None):
    """What each image's rewards measure distances to -> ((U, D), U images used).

    With a fixed `prototype` (D,) (adaptation): that vector for every image, U = N. Otherwise groups
    of K ground-truth embeddings (U = N cut to whole groups): `proto` its group's prototype,
    `shuffle_proto` the prototype of group pi(g), `self` its own embedding, `shuffle_self` the
    embedding of the image in the same slot of group pi(g).
    """
    n = len(features)
    if prototype is not None:
        return prototype.expand(n, -1), n
    k = config.group_size
    used = used_count(n, k)
    if used == 0:  # a last batch smaller than one group: no anchors, no reward (it crashed on the empty group)
        return None, 0
    f_gt = ground_truth_embeddings(encoder, features, targets, used)
    perm = draw_group_permutation(used // k, features.device, generator) if config.train_mode.startswith("shuffle") else None
    if config.train_mode in ("proto", "shuffle_proto"):
        return group_prototypes(f_gt, k, perm), used
    return (permute_groups(f_gt, k, perm) if perm is not None else f_gt), used


def batch_inputs(encoder, images, targets, config, generator, prototype=None):
    """What a batch's rollout and rewards start from -> (features, anchors, used): the poolable
    features (`images` (N, 1, 84, 84) through the frozen encoder, or FeatureRows of their encoder maps
    in a run's feature cache, utils/successor/data.py) and `reward_anchors`' pair."""
    if isinstance(images, FeatureRows):
        features = poolable(images)  # once, for the anchors and the rollout
    else:  # images (N, 1, 84, 84): the frozen encoder's pass
        with torch.no_grad(), config.rollout.precision.autocast(images.device):
            features = encoder.features(images)
    anchors, used = reward_anchors(encoder, features, targets, config, generator, prototype)
    return features, anchors, used


def batch_outcome(agent, episode, targets, anchors, used, config, optimizer=None):
    """A batch's figures from its episode: final IoUs (N,) of every image, the rewards of the first
    U images and the policy terms; the REINFORCE update when `optimizer` is given."""
    out = {"final_iou": episode.final_ious(targets), "used": used, "episode": episode}
    if used == 0:  # a last batch smaller than one group: no reward
        return out
    rewards = step_rewards(anchors, episode.embeddings[:used], config.sign)[0]
    logits = episode.logits[:used]
    if optimizer is not None:  # the episode's logits again, with gradients, in one batched pass
        with config.rollout.precision.autocast(targets.device):
            logits = agent.sequence_logits(episode.states[:used])
    terms = policy_terms(rewards, logits, episode.actions[:used], config.gamma, config.lamb_ent)
    if optimizer is not None:
        optimizer_step(optimizer, terms["loss"])
    out.update(rewards=rewards, policy=terms)
    return out


def ground_truth_embeddings(encoder, features, targets, used):
    """The frozen encoder's embeddings (U, D) of the first `used` images' ground-truth boxes; kept in the
    batch's `kept` dict where FeatureRows have one (the same batch every epoch: the same values)."""
    kept = features.kept if isinstance(features, FeatureRows) else None
    key = ("f_gt", used, features.rows.cpu().numpy().tobytes()) if kept is not None else None
    if key in (kept or ()):
        return kept[key]
    maps, index = batch_maps(features)
    with torch.no_grad():
        f_gt = encoder.embed(maps, torch.cat([index[:used].to(targets.dtype), targets[:used]], dim=1)).float()
    if kept is not None and not encoder.training:  # dropout draws afresh in train mode
        kept[key] = f_gt
    return f_gt


def agent_batch(encoder, agent, images, targets, config, generator, optimizer=None, prototype=None, policy="sample"):
    """One batch (`images` (N, 1, 84, 84), or FeatureRows of their encoder maps): roll out from the
    whole image on every image, reward by the distance to the anchors of `reward_anchors` (the first
    U images), REINFORCE update when `optimizer` is given. Returns per-batch tensors; `final_iou` (N,)
    covers every image."""
    features, anchors, used = batch_inputs(encoder, images, targets, config, generator, prototype)
    episode = rollout(encoder, agent, features, config.rollout, policy, generator)
    return batch_outcome(agent, episode, targets, anchors, used, config, optimizer)


def group_outcomes(encoder, agent, batches, config, generator, prototype, policy):
    """`agent_batch` of each batch of `batches` [(FeatureRows, targets)] without an update, their
    images rolled out together (utils/localization/together.py): each batch's anchors and then its
    Gumbel draws come from `generator` in the order that batch after batch draws them."""
    inputs, noise = [], []
    for images, targets in batches:
        inputs.append(batch_inputs(encoder, images, targets, config, generator, prototype))
        if policy == "sample":
            noise.append(gumbel_noise(episode_noise_shape(len(images), config.rollout), images.device, generator))
    parts = [features for features, _, _ in inputs]
    episode = rollout(encoder, agent, together(parts), config.rollout, policy, noise=torch.cat(noise, dim=1) if noise else None)
    outs, start = [], 0
    for (_, targets), (features, anchors, used) in zip(batches, inputs):
        outs.append(batch_outcome(agent, episode.images(start, start + len(features)), targets, anchors, used, config))
        start += len(features)
    return outs


def agent_epoch(encoder, agent, loader, device, generator, config, epoch, optimizer=None, phase=None, prototype=None,
                policy="sample"):
    """One pass of agent training (`optimizer` given) or evaluation; the encoder stays frozen in eval
    mode. Returns (metrics, final IoUs (N,) of every image). Metric meanings as the successor's:
    `Pol Loss` the batch sum of -log pi * A and `Ent Loss` the batch-summed entropy (means over
    batches), `Rewards` the mean step reward (mean over batches), `Loc Acc` CorLoc over every image."""
    training = optimizer is not None
    phase = phase or ("Train" if training else "Test")
    encoder.eval()
    agent.train(training)
    zero = torch.zeros((), device=device)
    final_ious = []
    outcome = lambda images, targets: agent_batch(encoder, agent, images, targets, config, generator, optimizer, prototype, policy)
    rolled_together = getattr(getattr(loader, "dataset", None), "rollout_groups", None)  # a run's feature cache has one
    if not training and policy != "random" and rolled_together is not None and rolled_together.enabled:
        loader, outcome = batched_evaluation(encoder, agent, loader, device, config, generator, prototype, policy, rolled_together)

    def step(images, targets):
        with torch.set_grad_enabled(training):
            out = outcome(images, targets)
        final_ious.append(out["final_iou"])
        hits = count(corloc_hits(out["final_iou"]))
        if "policy" not in out:  # no group: CorLoc only
            return BatchSums(zero, len(images), {"pol": zero, "ent": zero, "reward_mean": zero, "loc": hits, "batches_with_loss": zero})
        terms = out["policy"]
        values = {"pol": terms["policy"], "ent": terms["entropy"], "reward_mean": out["rewards"].mean(), "loc": hits,
                  "batches_with_loss": torch.ones((), device=device)}
        return BatchSums(terms["loss"], len(images), values)

    meter = run_batches(loader, device, phase, epoch, config.loop, step, progress=lambda m: {"loc": f"{m.percent_of_items('loc'):.1f}"})
    sums, items = meter.totals(), max(meter.items, 1)
    with_loss = max(sums["batches_with_loss"], 1)
    metrics = {f"{phase} Pol Loss": sums["pol"] / with_loss, f"{phase} Rewards": sums["reward_mean"] / with_loss,
               f"{phase} Loc Acc": 100.0 * sums["loc"] / items, f"{phase} Ent Loss": sums["ent"] / with_loss}
    return metrics, torch.cat(final_ious).cpu() if final_ious else torch.zeros(0)


def batched_evaluation(encoder, agent, loader, device, config, generator, prototype, policy, rollout_groups):
    """An evaluation pass's batches (as many as the loop takes) and an outcome per batch with the
    groups that `rollout_groups` allows rolled out together, each when the pass reaches its first
    batch (so the draws keep their order); every other batch as `agent_batch` computes it."""
    taken = itertools.islice(loader, batches_taken(loader, config.loop))
    batches = [(images.to(device), targets.to(device)) for images, targets in taken]
    group_of = {index: group for group in groups(batches) for index in group}
    ready = {}
    position = iter(range(len(batches)))

    def outcome(images, targets):
        index = next(position)
        if index not in ready:
            group = group_of[index]
            parts = [batches[i] for i in group]
            if rollout_groups.usable(encoder, agent, [part for part, _ in parts], config.rollout):
                ready.update(zip(group, group_outcomes(encoder, agent, parts, config, generator, prototype, policy)))
            else:
                return agent_batch(encoder, agent, images, targets, config, generator, None, prototype, policy)
        return ready.pop(index)

    return batches, outcome
