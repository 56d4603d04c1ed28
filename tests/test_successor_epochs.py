"""utils/successor/epochs.py: the encoder's loss per train mode, batches cut to whole groups, the reward
anchors and the adaptation update (only the agent changes)."""

import pytest
import torch
import torch.nn.functional as F

from conftest import TinyImages, rows_loader

from models import RoIAgent, RoIEncoder
from utils.localization.frozen import FrozenEncoder, SpeedPlan
from utils.localization.rollout import RolloutConfig
from utils.run.speed import Precision
from utils.run.loop import LoopConfig
from utils.successor.anchors import draw_anchor_pairs
from utils.successor.config import AgentConfig, EncoderConfig
from utils.successor.epochs import agent_epoch, encoder_batch, reward_anchors
from utils.successor.groups import group_prototypes, permute_groups


@pytest.mark.parametrize("mode", ["self", "proto", "shuffle_self", "shuffle_proto"])
def test_encoder_loss_per_train_mode(mode):
    """The triplet loss of each mode equals nn.TripletMarginLoss on the anchors and boxes the mode names."""
    torch.manual_seed(0)
    encoder = RoIEncoder().eval()  # no dropout: the embeddings can be recomputed
    targets = torch.tensor([[x, y, x + 27, y + 27] for x, y in [(0, 0), (10, 20), (56, 56), (30, 5), (5, 40), (20, 20)]],
                           dtype=torch.float32)
    images = torch.randn(6, 1, 84, 84)
    config = EncoderConfig(group_size=2, train_mode=mode)
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    out = encoder_batch(encoder, images, targets, config, generator)
    generator.set_state(state)  # the same draws again, by hand
    boxes, ious = draw_anchor_pairs(targets, generator)
    perm = torch.randperm(3, generator=generator)
    features = encoder.features(images)
    f_gt, f_i, f_j = (encoder.embed(features, b) for b in (targets, boxes[:, 0], boxes[:, 1]))
    if mode.startswith("shuffle"):
        f_i, f_j, ious = (permute_groups(x, 2, perm) for x in (f_i, f_j, ious))
    anchor = group_prototypes(f_gt, 2) if mode.endswith("proto") else f_gt
    i_pos = ious[:, 0] >= ious[:, 1]
    pos, neg = torch.where(i_pos[:, None], f_i, f_j), torch.where(i_pos[:, None], f_j, f_i)
    expected = torch.nn.TripletMarginLoss(margin=60.0, p=2)(anchor, pos, neg)
    assert torch.allclose(out["ord"], expected, rtol=1e-5)
    assert torch.allclose(out["base"], F.mse_loss(encoder.decode(features), images))
    assert torch.allclose(out["total"], out["base"] + 0.1 * out["ord"])


def test_batch_cut_to_whole_groups():
    encoder = RoIEncoder()
    targets = torch.tensor([[x, 10, x + 27, 37] for x in range(7)], dtype=torch.float32)
    out = encoder_batch(encoder, torch.randn(7, 1, 84, 84), targets, EncoderConfig(group_size=3), torch.Generator().manual_seed(0))
    assert out["used"] == 6 and out["correct"]["inst"].shape == (6,)
    f_gt = torch.randn(7, 512)
    anchors, used = reward_anchors(f_gt, AgentConfig(group_size=3, train_mode="proto"), None)
    assert used == 6 and anchors.shape == (6, 512)
    assert torch.equal(anchors[0], anchors[2]) and not torch.equal(anchors[2], anchors[3])
    assert torch.allclose(anchors[3], f_gt[3:6].mean(dim=0))


def test_adaptation_updates_only_the_agent():
    torch.manual_seed(0)
    encoder, agent = RoIEncoder().requires_grad_(False), RoIAgent()
    loader = rows_loader(TinyImages(8), 8)
    frozen = FrozenEncoder(encoder.eval(), "cpu", Precision(), 8, SpeedPlan(True, True), 5)
    before_encoder = {k: v.clone() for k, v in encoder.state_dict().items()}
    before_agent = {k: v.clone() for k, v in agent.state_dict().items()}
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    config = AgentConfig(rollout=RolloutConfig(seq_len=4, inclusive=True), loop=LoopConfig())
    prototype = torch.randn(512)
    metrics, extras = agent_epoch(frozen, agent, loader, torch.device("cpu"), torch.Generator().manual_seed(0), config, 0,
                                  optimizer, prototype=prototype)
    ious = extras["final_ious"]
    assert not encoder.training  # the frozen encoder stays in eval mode (no dropout in the rewards)
    assert all(torch.equal(before_encoder[k], v) for k, v in encoder.state_dict().items())
    assert all(not torch.equal(before_agent[k], v) for k, v in agent.state_dict().items())
    assert ious.shape == (8,) and set(metrics) == {"Train Pol Loss", "Train Rewards", "Train Loc Acc", "Train Ent Loss"}
