"""Rewards and the REINFORCE loss (docs/method.md §6)."""

import functools

import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from utils.localization.boxes import box_iou_pairs


def step_rewards(f_gt, step_embeddings, sign=False, sparse=False):
    """Rewards from embedding distances to the ground truth.

    f_gt: (N, D); step_embeddings: (N, T + 1, D), f_0 (whole image) then the box after each step.
    D_t = ||f_gt - f_t||_2; r_t = -(D_t - D_{t-1}), t = 1..T; `sign`: sign(r_t); `sparse`: every
    step gets D_0 - D_T. Returns rewards (N, T) and the distances (N, T + 1). No gradients.
    """
    with torch.no_grad():
        n, steps_plus_one, dim = step_embeddings.shape
        anchors = f_gt[:, None, :].expand(n, steps_plus_one, dim).reshape(-1, dim)
        distances = F.pairwise_distance(anchors, step_embeddings.reshape(-1, dim)).view(n, steps_plus_one)
        rewards = distances[:, :-1] - distances[:, 1:]
        if sparse:
            rewards = (distances[:, :1] - distances[:, -1:]).expand_as(rewards).clone()
        if sign:
            rewards = torch.sign(rewards)
    return rewards, distances


def iou_rewards(ious):
    """Oracle rewards: the step's IoU gain with the ground truth. ious: (N, T + 1) -> (N, T)."""
    return ious[:, 1:] - ious[:, :-1]


def discounted_returns(rewards, gamma):
    """Returns-to-go G_t = sum_{k >= t} gamma^(k - t) r_k for (N, T) rewards, as one matrix product."""
    return rewards @ discount_matrix(rewards.shape[1], float(gamma), rewards.dtype, rewards.device)


@functools.lru_cache(maxsize=16)
def discount_matrix(steps, gamma, dtype, device):
    """[k, t] -> gamma^(k - t) for k >= t, else 0: (T, T), built once per shape and gamma."""
    t = torch.arange(steps, device=device, dtype=dtype)
    exponent = t[:, None] - t[None, :]
    return torch.where(exponent >= 0, gamma**exponent.clamp(min=0), torch.zeros_like(exponent))


def policy_terms(rewards, logits, actions, gamma, lamb_ent):
    """REINFORCE with a batch-mean baseline; returns a dict of tensors.

    rewards (N, T), logits (N, T, A), actions (N, T) int64. Baseline b_t = mean over the batch
    of G_t; A = G - b (no gradient). loss = sum(-log pi(a_t) * A_t - lamb_ent * entropy_t) over
    batch and steps. Keys: loss, policy (the -log pi * A sum), entropy (the entropy sum),
    returns, advantages.
    """
    returns = discounted_returns(rewards, gamma)
    advantages = (returns - returns.mean(dim=0, keepdim=True)).detach()
    # validate_args=False: no host sync per batch (and NaN logits reach the non-finite check)
    if logits.dtype not in (torch.float32, torch.float64):  # bf16 under autocast: the loss in float32
        logits = logits.float()
    distribution = Categorical(logits=logits, validate_args=False)
    policy = (-distribution.log_prob(actions) * advantages).sum()
    entropy = distribution.entropy().sum()
    loss = policy - lamb_ent * entropy
    return {"loss": loss, "policy": policy, "entropy": entropy, "returns": returns, "advantages": advantages}


def policy_loss(rewards, logits, actions, gamma, lamb_ent):
    """-> (loss scalar, advantages (N, T)); see `policy_terms`."""
    terms = policy_terms(rewards, logits, actions, gamma, lamb_ent)
    return terms["loss"], terms["advantages"]


def embedding_reward(anchors, episode, targets, config):
    """The method's reward: the decrease of each step's embedding distance to the anchor (the ground
    truth's embedding, or a prototype), with `config.sign` / `config.sparse` (see `step_rewards`)."""
    return step_rewards(anchors, episode.embeddings, config.sign, config.sparse)[0]


def iou_reward(anchors, episode, targets, config):
    """Oracle: each step's IoU gain with the ground-truth box (reads the labels)."""
    return iou_rewards(box_iou_pairs(episode.boxes, targets[:, None, :]))


# --reward: name -> function (anchors (N, D), episode (an Episode of N images), targets (N, 4), config)
# -> rewards (N, T) without gradients; config holds `sign` and `sparse`. A new reward is one function plus
# one line here (or `REWARDS["name"] = function` before the script parses its flags).
REWARDS = {"embed": embedding_reward, "iou": iou_reward}
