"""The batched rollout and one joint-training batch."""

import torch

from models import Agent, Net
from utils.data.datasets import ClutteredMNIST
from utils.data.loaders import make_loader
from utils.localization.actions import Actor
from utils.localization.rollout import WHOLE_IMAGE_BOX, RolloutConfig, rollout
from utils.method2021.config import JointConfig, rollout_config
from utils.method2021.epochs import joint_batch, joint_epoch, pick_two_steps
from utils.method2021.flags import parse_args
from utils.run.loop import make_optimizer


def small_models(hidden_size=8):
    torch.manual_seed(0)
    return Net(pooling_size=3), Agent(512, 10, hidden_size=hidden_size)


def test_rollout_shapes_and_boxes_follow_the_actor():
    net, agent = small_models()
    net.eval()
    images = torch.randn(5, 1, 84, 84)
    episode = rollout(net, agent, net.features(images), RolloutConfig(seq_len=4, num_act=10, min_box_side=28))
    assert episode.boxes.shape == (5, 5, 4) and episode.embeddings.shape == (5, 5, 512)
    assert episode.logits.shape == (5, 4, 10) and episode.actions.shape == (5, 4)
    assert torch.equal(episode.boxes[:, 0], torch.tensor(WHOLE_IMAGE_BOX).expand(5, 4))
    actor = Actor(5)
    for t in range(4):
        assert torch.equal(actor.takeaction(episode.actions[:, t]), episode.boxes[:, t + 1])
    # every step's embedding is the net's embedding of that step's box, without gradients
    with torch.no_grad():
        expected = net(images, episode.boxes[:, 2])
    assert torch.allclose(episode.embeddings[:, 2], expected, atol=1e-5) and not episode.embeddings.requires_grad


def test_greedy_and_random_rollouts():
    net, agent = small_models()
    net.eval()
    features = net.features(torch.randn(3, 1, 84, 84))
    greedy = rollout(net, agent, features, RolloutConfig(3, 10, 28), policy="greedy")
    assert torch.equal(greedy.actions, greedy.logits.argmax(dim=2))
    random_walk = rollout(None, None, features, RolloutConfig(3, 4, 28), policy="random")
    assert random_walk.logits is None and random_walk.embeddings is None and random_walk.actions.max() < 4


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
    from utils.method2021.evaluation import corloc, final_ious

    net, agent = small_models()
    args = parse_args(["--seq_len", "5", "--num_act", "10"])
    loader = make_loader(ClutteredMNIST(synthetic_data, 4, "test"), 8, False)  # 6 batches
    with torch.no_grad():
        metrics, extras = joint_epoch(net, agent, loader, "cpu", torch.Generator().manual_seed(0), JointConfig.from_args(args), 0,
                                      phase="G", policy="greedy")
    expected = final_ious(net, agent, loader, "cpu", rollout_config(args), "greedy")
    assert torch.allclose(extras["final_ious"], expected)
    assert abs(metrics["G Loc Acc"] - corloc(expected)) < 1e-9
