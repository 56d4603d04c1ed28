"""utils/localization/rollout.py: the batched rollout (shapes, boxes that follow the actor, the greedy and
random policies)."""

import torch
from conftest import small_models

from models import RoIAgent, RoIEncoder
from utils.localization.actions import Actor
from utils.localization.frozen import BoxMemo
from utils.localization.rollout import RolloutConfig, rollout


def test_rollout_shapes_and_boxes_follow_the_actor():
    net, agent = small_models()
    net.eval()
    images = torch.randn(5, 1, 84, 84)
    episode = rollout(net, agent, net.features(images), RolloutConfig(seq_len=4, num_act=10, min_box_side=28))
    assert episode.boxes.shape == (5, 5, 4) and episode.embeddings.shape == (5, 5, 512)
    assert episode.logits.shape == (5, 4, 10) and episode.actions.shape == (5, 4)
    assert torch.equal(episode.boxes[:, 0], torch.tensor([0.0, 0.0, 83.0, 83.0]).expand(5, 4))
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


def test_a_batch_given_as_rows_of_a_larger_map_rolls_out_as_the_gathered_batch():
    """`rows` into a larger map (a FrozenEncoder's cached maps, no copy) give the episode of the same
    images gathered, bit for bit, for the RoI agent (RoI features) and the 2021 agent (embeddings)."""
    torch.manual_seed(0)
    encoder, roi_agent = RoIEncoder(pooling_size=3, dim=16).eval(), RoIAgent(pooling_size=3, hidden_size=8)
    net, agent = small_models()
    net.eval()
    rows = torch.tensor([6, 1, 4, 4])
    for model, policy_agent in ((encoder, roi_agent), (net, agent)):
        with torch.no_grad():
            maps = model.features(torch.randn(8, 1, 84, 84))
        config = RolloutConfig(seq_len=3, num_act=10, min_box_side=28)
        gathered = rollout(model, policy_agent, maps[rows], config, generator=torch.Generator().manual_seed(1))
        as_rows = rollout(model, policy_agent, maps, config, generator=torch.Generator().manual_seed(1), rows=rows)
        for name in ("boxes", "embeddings", "logits", "actions", "states"):
            assert torch.equal(getattr(as_rows, name), getattr(gathered, name)), name


# each makes the host wait for a CUDA device: a value read back, a data-dependent size, a tensor made from host data
SYNC_OPS = ("aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::lift_fresh")


def sync_ops(run):
    """{op: calls} of the host-syncing ops while `run()` runs (torch.profiler on the CPU), after one
    warm-up call (the actor builds its tables once per device)."""
    run()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        run()
    return {event.key: event.count for event in profile.key_averages() if event.key in SYNC_OPS}


def test_a_rollout_of_either_method_never_waits_for_the_device():
    """No op of a sampled or greedy rollout reads a value back to the host: 0 syncs per step, for the
    2021 net and agent and for the successor's encoder and RoI agent over rows of cached maps."""
    torch.manual_seed(0)
    net, agent = small_models()
    encoder, roi_agent = RoIEncoder(pooling_size=3, dim=16).eval(), RoIAgent(pooling_size=3, hidden_size=8)
    config = RolloutConfig(seq_len=4, num_act=10, min_box_side=28)
    with torch.no_grad():
        net_maps, encoder_maps = net.eval().features(torch.randn(6, 1, 84, 84)), encoder.features(torch.randn(12, 1, 84, 84))
    rows = torch.tensor([3, 0, 7, 11, 5, 2])
    for policy in ("sample", "greedy"):
        assert sync_ops(lambda: rollout(net, agent, net_maps, config, policy, torch.Generator().manual_seed(0))) == {}, policy
        assert sync_ops(lambda: rollout(encoder, roi_agent, encoder_maps, config, policy, torch.Generator().manual_seed(0),
                                        rows=rows)) == {}, policy


def test_a_box_memo_finds_its_new_boxes_once_a_step():
    """The BoxMemo (CPU runs only, utils/localization/frozen.py SpeedPlan) counts the boxes it must
    compute: one `nonzero` per box lookup (T + 1 an episode), and nothing else waits."""
    torch.manual_seed(0)
    encoder, roi_agent = RoIEncoder(pooling_size=3, dim=16).eval(), RoIAgent(pooling_size=3, hidden_size=8)
    config = RolloutConfig(seq_len=4, num_act=10, min_box_side=28)
    with torch.no_grad():
        maps = encoder.features(torch.randn(12, 1, 84, 84))
    memo = BoxMemo(12, config.seq_len + 1, "cpu")
    ops = sync_ops(lambda: rollout(encoder, roi_agent, maps, config, "greedy", rows=torch.arange(12), memo=memo))  # 2 episodes
    assert ops == {"aten::nonzero": config.seq_len + 1}
