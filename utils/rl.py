"""Stable import path of the rewards and the REINFORCE loss (`from utils.rl import discounted_returns,
policy_loss`); the code lives in utils/localization/rewards.py."""

from utils.localization.rewards import discounted_returns, iou_rewards, policy_loss, policy_terms, step_rewards  # noqa: F401
