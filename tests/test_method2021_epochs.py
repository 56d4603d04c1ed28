"""utils/method2021/epochs.py: step pairs, one joint-training batch, the frozen net's mode and a greedy
evaluation epoch."""

import torch
from conftest import small_models

from utils.data.datasets import ClutteredMNIST
from utils.data.loaders import make_loader
from utils.method2021.config import JointConfig, rollout_config
from utils.method2021.epochs import joint_batch, joint_epoch, pick_two_steps
from utils.method2021.evaluation import corloc, final_ious
from utils.method2021.flags import parse_args
from utils.run.loop import make_optimizer


def test_pick_two_steps_are_distinct_and_cover_all_pairs():
    i, j = pick_two_steps(20_000, 4, "cpu", torch.Generator().manual_seed(0))
    assert torch.all(i != j) and i.max() == 3 and j.max() == 3
    pairs = torch.bincount(i * 4 + j, minlength=16).float() / 20_000
    off_diagonal = pairs[torch.tensor([a * 4 + b for a in range(4) for b in range(4) if a != b])]
    assert torch.allclose(off_diagonal, torch.full((12,), 1 / 12), atol=0.01)


def test_joint_batch_updates_agent_then_net(synthetic_data):
    net, agent = small_models()
    args = parse_args(["--seq_len", "3", "--num_act", "10", "--freeze", "0", "--margin", "1"])
    images, targets = ClutteredMNIST(synthetic_data, 4, "train")[list(range(16))]
    net_opt, agent_opt = make_optimizer("SGD", net.parameters(), 0.01), make_optimizer("Adam", agent.parameters(), 0.01)
    net_before = [p.clone() for p in net.parameters()]
    agent_before = [p.clone() for p in agent.parameters()]
    out = joint_batch(net, agent, images, targets, JointConfig.from_args(args), torch.Generator().manual_seed(0), (net_opt, agent_opt))
    assert out["rewards"].shape == (16, 3) and out["pair_ious"].shape == (16, 2) and out["final_iou"].shape == (16,)
    assert any(not torch.equal(a, b) for a, b in zip(agent_before, agent.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(net_before, net.parameters()))


def test_frozen_net_mode(synthetic_data):
    """The frozen net trains in train mode (the original) unless --frozen_net_mode eval."""
    net, agent = small_models()
    net.requires_grad_(False)
    loader = make_loader(ClutteredMNIST(synthetic_data, 4, "train"), 32, False)
    agent_opt = make_optimizer("Adam", agent.parameters(), 0.001)
    for flags, expected_mode in ((["--freeze", "1"], True), (["--freeze", "1", "--frozen_net_mode", "eval"], False),
                                 (["--freeze", "0", "--frozen_net_mode", "eval"], True)):
        args = parse_args(["--seq_len", "2", "--num_act", "10", "--max_batches", "1", *flags])
        joint_epoch(net, agent, loader, "cpu", torch.Generator().manual_seed(0), JointConfig.from_args(args), 0, (None, agent_opt))
        assert net.training is expected_mode and agent.training


def test_greedy_epoch_is_greedy_on_every_batch(synthetic_data):
    """`Loc Acc` of a greedy evaluation epoch over several batches equals the greedy CorLoc of
    `utils.method2021.evaluation` (a policy mix-up after the first batch once made them differ)."""
    net, agent = small_models()
    args = parse_args(["--seq_len", "5", "--num_act", "10"])
    loader = make_loader(ClutteredMNIST(synthetic_data, 4, "test"), 8, False)  # 6 batches
    with torch.no_grad():
        metrics, extras = joint_epoch(net, agent, loader, "cpu", torch.Generator().manual_seed(0), JointConfig.from_args(args), 0,
                                      phase="G", policy="greedy")
    expected = final_ious(net, agent, loader, "cpu", rollout_config(args), "greedy")
    assert torch.allclose(extras["final_ious"], expected)
    assert abs(metrics["G Loc Acc"] - corloc(expected)) < 1e-9
