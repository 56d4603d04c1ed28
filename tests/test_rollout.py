"""utils/localization/rollout.py: the batched rollout (shapes, boxes that follow the actor, the greedy and
random policies)."""

import torch
from conftest import small_models

from utils.localization.actions import Actor
from utils.localization.rollout import WHOLE_IMAGE_BOX, RolloutConfig, rollout


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
