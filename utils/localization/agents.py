"""The agent interface that the rollout and the policy-gradient loss rely on, written once, and the
action sampling both agents share (docs/method.md §5, §10.8).

An agent declares what it reads of each box through `reads`; the net provides it:
- `EMBEDDING` (the 2021 `models.Agent`): the box's embedding `net.embed(features, rois)` (N, D);
- `ROI_FEATURE` (the successor's `models.RoIAgent`): the pooled RoI feature
  `net.roi_features(features, rois)` (N, C, p, p); the reward still reads the embedding
  `net.project(roi_feature)`.
"""

from typing import Callable, Protocol

import torch

EMBEDDING = "embedding"
ROI_FEATURE = "roi_feature"
AGENT_INPUTS = (EMBEDDING, ROI_FEATURE)


class PolicyAgent(Protocol):
    """What `utils.localization.rollout.rollout` and the policy-gradient loss call on an agent."""

    reads: str  # EMBEDDING or ROI_FEATURE: the agent's state of a box
    num_act: int

    def init_hidden(self, batch_size: int, device=None) -> torch.Tensor | None:
        """h_0: (N, H) zeros, or None for an agent without recurrence."""

    def rollout_step(self) -> Callable:
        """A function (state (N, ...), h (N, H) | None) -> (h, logits (N, A)) for one step without gradients."""

    def sequence_logits(self, states: torch.Tensor) -> torch.Tensor:
        """The logits of a whole episode in one batched pass: states (N, T, ...) -> (N, T, A), with
        gradients (what REINFORCE differentiates); the same values as T rollout steps from h_0."""


def gumbel_noise(shape, device, generator=None):
    """Standard Gumbel draws -log(E), E ~ Exponential(1), float32."""
    return torch.empty(shape, device=device).exponential_(generator=generator).log_().neg_()


def sample_actions(logits, generator=None, noise=None):
    """Samples one action per row from softmax(logits) -> (N,) int64, with no host sync.

    argmax(logits + G) with G standard Gumbel noise is a draw from softmax(logits) (the Gumbel-max
    trick), so this has the distribution of `Categorical(logits=logits).sample()`; unlike
    `torch.multinomial` it neither syncs nor fails on NaN logits (the training loop reports those as
    a non-finite loss). `noise` (N, A) may be drawn in advance with `gumbel_noise`.
    """
    if noise is None:
        noise = gumbel_noise(logits.shape, logits.device, generator)
    return (logits + noise).argmax(dim=-1)
