"""utils/localization/rewards.py: discounted returns, embedding-distance and IoU step rewards (the 2021
ground-truth embedding and the successor's prototype), the policy-gradient loss."""

import pytest
import torch
from torch.distributions import Categorical

from utils.localization.rewards import discounted_returns, iou_rewards, policy_loss, policy_terms, step_rewards


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    # G_2 = r_2; G_1 = r_1 + 0.5 r_2; G_0 = r_0 + 0.5 r_1 + 0.25 r_2
    expected = torch.tensor([[1 + 1 + 0.75, 2 + 1.5, 3.0], [0 - 0.5 + 1.0, -1 + 2.0, 4.0]])
    assert torch.allclose(discounted_returns(rewards, 0.5), expected)
    assert torch.allclose(discounted_returns(rewards, 0.0), rewards)
    assert torch.allclose(discounted_returns(rewards, 1.0), rewards.flip(1).cumsum(1).flip(1))


def test_step_rewards_dense_sign_sparse():
    f_gt = torch.zeros(1, 2)
    # distances to f_gt: 5, 3, 4, 0
    steps = torch.tensor([[[3.0, 4.0], [0.0, 3.0], [4.0, 0.0], [0.0, 0.0]]])
    rewards, distances = step_rewards(f_gt, steps)
    assert torch.allclose(distances, torch.tensor([[5.0, 3.0, 4.0, 0.0]]), atol=1e-5)
    assert torch.allclose(rewards, torch.tensor([[2.0, -1.0, 4.0]]), atol=1e-5)
    assert torch.equal(step_rewards(f_gt, steps, sign=True)[0], torch.tensor([[1.0, -1.0, 1.0]]))
    assert torch.allclose(step_rewards(f_gt, steps, sparse=True)[0], torch.tensor([[5.0, 5.0, 5.0]]), atol=1e-5)
    assert torch.allclose(iou_rewards(torch.tensor([[0.1, 0.3, 0.2]])), torch.tensor([[0.2, -0.1]]))


def test_policy_loss_small_case_by_hand():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logits = torch.zeros(2, 2, 3, requires_grad=True)  # uniform: log pi = -log 3, entropy log 3
    actions = torch.tensor([[0, 1], [2, 2]])
    gamma, lamb_ent = 0.5, 0.1
    # G = [[1, 0], [1, 2]]; baseline per step = [1, 1]; A = [[0, -1], [0, 1]]
    loss, advantages = policy_loss(rewards, logits, actions, gamma, lamb_ent)
    assert torch.allclose(advantages, torch.tensor([[0.0, -1.0], [0.0, 1.0]]))
    log3 = torch.log(torch.tensor(3.0))
    expected = log3 * (0 - 1 + 0 + 1) - lamb_ent * 4 * log3
    assert torch.allclose(loss, expected)
    loss.backward()
    assert logits.grad is not None and not advantages.requires_grad


def test_policy_terms_match_categorical():
    torch.manual_seed(0)
    rewards, logits = torch.randn(5, 4), torch.randn(5, 4, 10)
    actions = torch.randint(10, (5, 4))
    terms = policy_terms(rewards, logits, actions, 0.99, 5.0)
    dist = Categorical(logits=logits)
    returns = discounted_returns(rewards, 0.99)
    adv = returns - returns.mean(0)
    assert torch.allclose(terms["policy"], -(dist.log_prob(actions) * adv).sum())
    assert torch.allclose(terms["entropy"], dist.entropy().sum())
    assert terms["loss"].item() == pytest.approx((terms["policy"] - 5.0 * terms["entropy"]).item())


def test_prototype_reward_sign():
    prototype = torch.tensor([[0.0, 0.0]])
    steps = torch.tensor([[[4.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])  # closer, then farther
    rewards, distances = step_rewards(prototype, steps)
    assert torch.allclose(rewards, torch.tensor([[2.0, -1.0]]), atol=1e-5)
    assert torch.equal(step_rewards(prototype, steps, sign=True)[0], torch.tensor([[1.0, -1.0]]))
