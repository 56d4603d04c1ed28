"""The one rollout of the agent (training, evaluation and the random-policy baseline) and CorLoc.

An episode starts from the whole image and takes `seq_len` steps; every box is embedded from the
backbone features computed once per batch, without gradients (docs/method.md §7). The
step loop has no host sync: actions are sampled on the device from noise drawn before the loop,
and the actor steps by table lookups.
"""

from dataclasses import dataclass

import torch

from models.agent import EMBEDDING, ROI_FEATURE, gumbel_noise, sample_actions
from utils.data.clutter import IMAGE_SIZE
from utils.localization.actions import NUM_ACTIONS_SUPPORTED, Actor
from utils.localization.boxes import box_iou_pairs
from utils.run.speed import Precision

# f_0: the whole image as an inclusive box [0, 0, S - 1, S - 1] (the 2021 actor's own window starts one past it, at S).
CORLOC_IOU = 0.5
POLICIES = ("sample", "greedy", "random")


@dataclass(frozen=True)
class RolloutConfig:
    """One episode: `seq_len` steps of `num_act` actions from the whole image (docs/method.md §5, §7)."""

    seq_len: int = 10
    num_act: int = 10
    min_box_side: int = 28
    norm: bool = False  # L2-normalise embeddings before distances
    precision: Precision = Precision()
    inclusive: bool = False  # the successor's actor (inclusive widths, start [0, 0, 83, 83])
    image_size: int = IMAGE_SIZE  # S, the square input's side (224 on real images)


class Episode:
    """One rollout of a batch: boxes (N, T + 1, 4) with the whole image first, embeddings
    (N, T + 1, D) or None, logits (N, T, A) or None, actions (N, T) int64, and `states` (N, T, ...),
    what the agent read at each step (its `reads`: the embeddings themselves, or the RoI features):
    `agent.sequence_logits(episode.states)` recomputes the logits. RoI-feature states are given as
    the T steps' (N, ...) tensors and stacked when first read (evaluation never reads them)."""

    def __init__(self, boxes, embeddings, logits, actions, states=None):
        self.boxes, self.embeddings, self.logits, self.actions = boxes, embeddings, logits, actions
        self._states = states

    @property
    def states(self):
        if isinstance(self._states, list):
            self._states = torch.stack(self._states, dim=1)
        return self._states if self._states is not None else self.embeddings[:, :-1]

    def final_ious(self, targets):
        """IoU of each image's last box with its ground truth (N, 4) -> (N,)."""
        return box_iou_pairs(self.boxes[:, -1], targets)

    def images(self, start, stop):
        """The episode of images start..stop-1 (views, contiguous as a batch's own tensors are)."""
        part = lambda x: None if x is None else [step[start:stop] for step in x] if isinstance(x, list) else x[start:stop]
        return Episode(part(self.boxes), part(self.embeddings), part(self.logits), part(self.actions), part(self._states))


def maybe_normalize(embeddings, norm):
    """`--norm 1`: L2-normalise embeddings before distances (float32 under autocast too)."""
    if embeddings.dtype not in (torch.float32, torch.float64):  # bf16 under autocast
        embeddings = embeddings.float()
    return torch.nn.functional.normalize(embeddings, dim=1) if norm else embeddings


def rollout(net, agent, features, config, policy="sample", generator=None, noise=None, rows=None, memo=None):
    """Runs the agent for `config.seq_len` steps from the whole image, all images at once.

    net: the 2021 `Net` or the successor's `RoIEncoder`; agent: a `models.agent.PolicyAgent`,
    which declares what it reads of each box; features: the net's backbone map (N, C, h, w) of the batch,
    or (M, C, h, w) maps of which `rows` (N,) int64 name the batch's (a random policy only reads N
    and the device from `features`);
    config: a RolloutConfig; policy: "sample" (softmax sampling, the original's training and
    testing), "greedy" (argmax) or "random" (uniform over `config.num_act` actions; needs no agent
    and computes no embeddings); generator: the torch.Generator of the action draws; noise: the
    sampled policy's Gumbel draws (T, N, A) when drawn in advance (then the rollout draws nothing);
    memo: a BoxMemo (utils/localization/frozen.py) of the images `rows`, or None (every box computed).
    The whole rollout runs without gradients; the policy-gradient loss recomputes the episode's
    logits with `agent.sequence_logits(episode.states)` in one batched pass.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    n, device, steps = len(features) if rows is None else len(rows), features.device, config.seq_len
    actor = Actor(n, min_box_side=config.min_box_side, image_size=config.image_size, device=device, inclusive=config.inclusive,
                  num_actions=max(config.num_act, NUM_ACTIONS_SUPPORTED))
    box = whole_image_boxes(n, device, config.image_size)
    boxes, embeddings, logits_seq, actions_seq = [box], [], [], []
    if policy == "random":
        for actions in torch.randint(config.num_act, (steps, n), device=device, generator=generator):
            actions_seq.append(actions)
            boxes.append(actor.step(actions))
        return Episode(torch.stack(boxes, dim=1), None, None, torch.stack(actions_seq, dim=1))
    # every step's Gumbel draws at once
    if policy == "sample":
        noise = (gumbel_noise(episode_noise_shape(n, config), device, generator) if noise is None else noise).unbind(0)
    look = observer(net, agent, memo, rows)
    index = (torch.arange(n, device=device) if rows is None else rows).to(torch.float32)[:, None]
    if features.dtype not in (torch.float32, torch.float64):  # bf16 under autocast: RoIAlign runs in float32; convert once
        with torch.no_grad():
            features = features.float()
    hidden = agent.init_hidden(n, device)
    states = []  # what the agent reads, unless that is the embedding itself
    with torch.no_grad(), config.precision.autocast(device):
        agent_step = agent.rollout_step()
        for t in range(steps):
            roi_feature, embedding = look(features, index, t, box)
            embedding = maybe_normalize(embedding, config.norm)
            if roi_feature is None:
                state = embedding
            else:
                state = roi_feature
                states.append(state)
            embeddings.append(embedding)
            hidden, logits = agent_step(state, hidden)
            logits_seq.append(logits)
            actions = logits.argmax(dim=1) if policy == "greedy" else sample_actions(logits, noise=noise[t])
            actions_seq.append(actions)
            box = actor.step(actions)
            boxes.append(box)
        embeddings.append(maybe_normalize(look(features, index, steps, box)[1], config.norm))  # the last box: only the rewards read it
    stack = lambda seq: torch.stack(seq, dim=1)
    return Episode(stack(boxes), stack(embeddings), stack(logits_seq), stack(actions_seq), states or None)


def episode_noise_shape(n, config):
    """The shape (T, N, A) of the Gumbel draws of a sampled episode of N images (drawn at once)."""
    return (config.seq_len, n, config.num_act)


def observe(net, agent, features, rois):
    """What a step sees of its boxes: (the RoI feature when the agent reads it, else None; the embedding)."""
    if check_reads(agent) == ROI_FEATURE:
        roi_feature = net.roi_features(features, rois)
        return roi_feature, net.project(roi_feature)
    return None, net.embed(features, rois)


def check_reads(agent):
    """What `agent` reads of each box (EMBEDDING or ROI_FEATURE); anything else is a ValueError."""
    if agent.reads not in (EMBEDDING, ROI_FEATURE):
        raise ValueError(f"agent.reads must be {EMBEDDING!r} or {ROI_FEATURE!r}, got {agent.reads!r}")
    return agent.reads


def observer(net, agent, memo, rows):
    """A rollout's `observe` of step t's boxes (N, 4), as (maps, index, t, boxes) -> `observe`'s pair:
    through `memo` (a BoxMemo of the images `rows`) when given, else computed."""
    if memo is None:
        return lambda maps, index, t, box: observe(net, agent, maps, torch.cat([index, box], dim=1))
    reads = check_reads(agent)

    def look(maps, index, t, box):
        roi_feature, embedding = memo.observe(net, maps, index, rows, t, box)
        return (roi_feature if reads == ROI_FEATURE else None), embedding

    return look


def whole_image_boxes(n, device, image_size=IMAGE_SIZE):
    """(N, 4) copies of the whole-image box [0, 0, S - 1, S - 1] (the start of every episode), made on
    `device` (no copy from the host, which would wait for the device)."""
    box = torch.full((n, 4), float(image_size - 1), device=device)
    box[:, :2].fill_(0.0)
    return box


def corloc_hits(ious):
    """(N,) bool: the localisations that count for CorLoc (IoU >= 0.5)."""
    return ious >= CORLOC_IOU


def corloc(ious):
    """CorLoc: % of images whose box has IoU >= 0.5 with the ground truth (NaN for no images)."""
    return 100.0 * corloc_hits(ious).float().mean().item() if len(ious) else float("nan")
