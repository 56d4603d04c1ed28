"""Epochs of the successor method (docs/method.md §10.6, §10.9, §10.10): ordinal encoder pretraining with
prototypes and reconstruction, and agent training / test-time adaptation with the prototype reward.
Like utils/method2021/epochs.py, metric sums stay on the device and are read every `log_interval` batches."""

import itertools

import torch
import torch.nn.functional as F

from models.agent import gumbel_noise
from utils.localization.ordinal import ordered_correctly, triplet_loss
from utils.localization.rewards import REWARDS, policy_terms
from utils.localization.rollout import corloc_hits, episode_noise_shape, rollout
from utils.run.loop import BatchSums, EpochMeter, batches_taken, optimizer_step, run_batches
from utils.data.clutter import IMAGE_SIZE
from utils.successor.anchors import draw_anchor_pairs, real_anchors
from utils.successor.groups import draw_group_permutation, group_prototypes, permute_groups, used_count

ACC_NAMES = {"inst": "Inst", "proto": "Proto", "inst_other": "Inst Other", "proto_other": "Proto Other"}
MAX_ROLLOUT_IMAGES = 1024  # an evaluation rollout's images at most: whole batches up to this many roll out at once


def count(mask):
    """The number of True entries, as a 0-dim float32 tensor (no host sync)."""
    return mask.sum(dtype=torch.float32)


def encoder_batch(encoder, images, targets, config, generator):
    """Losses and per-image correctness of one batch (cut to whole groups of K).

    One encoder pass (none when the batch holds the frozen base's maps, `config.maps_given`); the
    reconstruction from its map (an encoder without a decoder, the VGG16 one: none, and a
    reconstruction loss of 0); the ground truth and both anchor boxes of every image through the head
    in one pass (dropout independent per element, as three calls).
    """
    k = config.group_size
    used = used_count(images.shape[0], k)
    images, targets = images[:used], targets[:used]
    anchors = None if config.image_size == IMAGE_SIZE else real_anchors(config.image_size, targets.device)
    boxes, ious = draw_anchor_pairs(targets, generator, anchors)
    perm = draw_group_permutation(used // k, images.device, generator)
    decodes = encoder.has_decoder
    with config.precision.autocast(images.device):
        features = images if config.maps_given else encoder.features(images)
        reconstruction = encoder.decode(features) if decodes else None
        sets = torch.cat([targets[None], boxes.transpose(0, 1)])  # (3, B, 4): gt, box i, box j
        f_gt, f_i, f_j = encoder.embed_sets(features, sets).float()
    # faithful: Sigmoid output against the normalised image
    base = F.mse_loss(reconstruction.float(), images) if decodes else torch.zeros((), device=images.device)
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


def reward_anchors(f_gt, config, generator, prototype=None):
    """What each image's rewards measure distances to -> ((U, D), U images used), from the batch's
    ground-truth embeddings `f_gt` (N, D).

    With a fixed `prototype` (D,) (adaptation): that vector for every image, U = N. Otherwise groups
    of K ground-truth embeddings (U = N cut to whole groups): `proto` its group's prototype,
    `shuffle_proto` the prototype of group pi(g), `self` its own embedding, `shuffle_self` the
    embedding of the image in the same slot of group pi(g).
    """
    n = len(f_gt)
    if prototype is not None:
        return prototype.expand(n, -1), n
    k = config.group_size
    used = used_count(n, k)
    if used == 0:  # a last batch smaller than one group: no anchors, no reward
        return None, 0
    f_gt = f_gt[:used]
    perm = draw_group_permutation(used // k, f_gt.device, generator) if config.train_mode.startswith("shuffle") else None
    if config.train_mode in ("proto", "shuffle_proto"):
        return group_prototypes(f_gt, k, perm), used
    return (permute_groups(f_gt, k, perm) if perm is not None else f_gt), used


def batch_outcome(agent, episode, targets, anchors, used, config, optimizer=None):
    """A batch's figures from its episode: final IoUs (N,) of every image, the rewards (`--reward`) of
    the first U images and the policy terms; the REINFORCE update when `optimizer` is given."""
    out = {"final_iou": episode.final_ious(targets), "used": used}
    if used == 0:  # a last batch smaller than one group: no reward
        return out
    scored = episode.images(0, used)
    rewards = REWARDS[config.reward](anchors, scored, targets[:used], config)
    logits = scored.logits
    if optimizer is not None:  # the episode's logits again, with gradients, in one batched pass
        with config.rollout.precision.autocast(targets.device):
            logits = agent.sequence_logits(scored.states)
    terms = policy_terms(rewards, logits, scored.actions, config.gamma, config.lamb_ent)
    if optimizer is not None:
        optimizer_step(optimizer, terms["loss"])
    out.update(rewards=rewards, policy=terms)
    return out


def agent_batch(frozen, agent, images, rows, targets, config, generator, optimizer=None, prototype=None, policy="sample"):
    """One batch, the images `rows` (N,) of the dataset `images` with their boxes `targets` (N, 4): roll
    out from the whole image, reward by the distance to the anchors of `reward_anchors` (the first U
    images), REINFORCE update when `optimizer` is given. Returns per-batch tensors; `final_iou` (N,)
    covers every image."""
    maps, map_rows, f_gt = frozen.batch(images, rows, targets)
    anchors, used = reward_anchors(f_gt, config, generator, prototype)
    episode = rollout(frozen.encoder, agent, maps, config.rollout, policy, generator, rows=map_rows, memo=frozen.memo(images))
    return batch_outcome(agent, episode, targets, anchors, used, config, optimizer)


def evaluation_outcomes(frozen, agent, images, batches, config, generator, prototype=None, policy="sample"):
    """`agent_batch` without an update of each batch of `batches` [(rows, targets)], consecutive batches
    of up to MAX_ROLLOUT_IMAGES images rolled out at once: each batch keeps its anchors, reward groups
    and figures, and draws its anchors and then its Gumbel noise from `generator` in the order that
    batch after batch draws them. Yields one outcome per batch."""
    for chunk in rollout_chunks(batches, MAX_ROLLOUT_IMAGES):
        maps, map_rows, f_gt = frozen.batch(images, torch.cat([rows for rows, _ in chunk]), torch.cat([t for _, t in chunk]))
        anchors, noise, start = [], [], 0
        for rows, targets in chunk:
            anchors.append(reward_anchors(f_gt[start:start + len(rows)], config, generator, prototype))
            start += len(rows)
            if policy == "sample":
                noise.append(gumbel_noise(episode_noise_shape(len(rows), config.rollout), rows.device, generator))
        episode = rollout(frozen.encoder, agent, maps, config.rollout, policy, generator, rows=map_rows, memo=frozen.memo(images),
                          noise=torch.cat(noise, dim=1) if noise else None)
        start = 0
        for (rows, targets), (batch_anchors, used) in zip(chunk, anchors):
            yield batch_outcome(agent, episode.images(start, start + len(rows)), targets, batch_anchors, used, config)
            start += len(rows)


def rollout_chunks(batches, max_images=MAX_ROLLOUT_IMAGES):
    """Consecutive runs of `batches` [(rows, targets)] of at most `max_images` images (a larger batch alone)."""
    chunk, size = [], 0
    for batch in batches:
        if chunk and size + len(batch[0]) > max_images:
            yield chunk
            chunk, size = [], 0
        chunk.append(batch)
        size += len(batch[0])
    if chunk:
        yield chunk


def outcome_sums(out, items, device):
    """The BatchSums of one batch's outcome (a batch without a group adds CorLoc only)."""
    hits = count(corloc_hits(out["final_iou"]))
    if "policy" not in out:
        zero = torch.zeros((), device=device)
        return BatchSums(zero, items, {"pol": zero, "ent": zero, "reward_mean": zero, "loc": hits, "batches_with_loss": zero})
    terms = out["policy"]
    values = {"pol": terms["policy"], "ent": terms["entropy"], "reward_mean": out["rewards"].mean(), "loc": hits,
              "batches_with_loss": torch.ones((), device=device)}
    return BatchSums(terms["loss"], items, values)


def agent_epoch(frozen, agent, loader, device, generator, config, epoch, optimizer=None, phase=None, prototype=None,
                policy="sample"):
    """One pass of agent training (`optimizer` given) or evaluation over `loader` (batches of (rows,
    targets) of the dataset `loader.dataset.dataset`, utils/data/loaders.py ImageRows), with the frozen
    encoder of `frozen` (a FrozenEncoder, checked first). Returns (metrics, {"final_ious": (N,) of every
    image}). Metric meanings as the successor's: `Pol Loss` the batch sum of -log pi * A and `Ent Loss`
    the batch-summed entropy (means over batches), `Rewards` the mean step reward (mean over batches),
    `Loc Acc` CorLoc over every image. Evaluation rolls whole batches out together (`evaluation_outcomes`)."""
    training = optimizer is not None
    phase = phase or ("Train" if training else "Test")
    frozen.check()
    agent.train(training)
    images = loader.dataset.dataset
    final_ious = []
    if training:
        def step(rows, targets):
            out = agent_batch(frozen, agent, images, rows, targets, config, generator, optimizer, prototype, policy)
            final_ious.append(out["final_iou"])
            return outcome_sums(out, len(rows), device)

        meter = run_batches(loader, device, phase, epoch, config.loop, step,
                            progress=lambda m: {"loc": f"{m.percent_of_items('loc'):.1f}"})
    else:
        meter = EpochMeter(device)
        batches = [(rows.to(device, non_blocking=True), targets.to(device, non_blocking=True))
                   for rows, targets in itertools.islice(loader, batches_taken(loader, config.loop))]
        with torch.no_grad():
            for index, ((rows, _), out) in enumerate(zip(batches, evaluation_outcomes(frozen, agent, images, batches, config, generator,
                                                                                     prototype, policy))):
                final_ious.append(out["final_iou"])
                meter.add(index, outcome_sums(out, len(rows), device))
        meter.check(phase, epoch)
    sums, items = meter.totals(), max(meter.items, 1)
    with_loss = max(sums["batches_with_loss"], 1)
    metrics = {f"{phase} Pol Loss": sums["pol"] / with_loss, f"{phase} Rewards": sums["reward_mean"] / with_loss,
               f"{phase} Loc Acc": 100.0 * sums["loc"] / items, f"{phase} Ent Loss": sums["ent"] / with_loss}
    return metrics, {"final_ious": torch.cat(final_ious).cpu() if final_ious else torch.zeros(0)}
