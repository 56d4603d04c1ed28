"""The successor method's pieces against hand-computed values: anchors and their bins, groups and
prototypes, the encoder and the RoI agent, the prototype ordinal loss, the prototype reward and
the adaptation update (only the agent changes)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import RoIAgent, RoIEncoder
from utils.localization.ordinal import ordered_correctly
from utils.localization.rewards import step_rewards
from utils.localization.rollout import RolloutConfig
from utils.run.loop import LoopConfig
from utils.successor.anchors import anchor_bins, draw_anchor_pairs, mnist_anchors
from utils.successor.config import AgentConfig, EncoderConfig
from utils.successor.epochs import agent_epoch, encoder_batch, reward_anchors
from utils.successor.groups import group_prototypes, permute_groups, used_count


def all_targets():
    """Every 28x28 ground-truth position: (3249, 4) `[x, y, x + 27, y + 27]`."""
    x, y = torch.meshgrid(torch.arange(57), torch.arange(57), indexing="ij")
    x, y = x.flatten().double(), y.flatten().double()
    return torch.stack([x, y, x + 27, y + 27], dim=1)


def test_anchors_count_and_shape():
    anchors = mnist_anchors()
    assert anchors.shape == (4837, 4)
    assert len({tuple(box) for box in anchors.tolist()}) == 3621
    sides = anchors[:, 2:] - anchors[:, :2] + 1
    assert sides.min() >= 28 and (sides[:, 0] - 1).min() == 27 and (sides - 1).max() == 75
    assert anchors.min() == 0 and anchors.max() == 83
    # s = 7 squares are exactly 28 wide: i = j = 5 gives [4*5+2-14, ., 4*5+14+1, .] = [8, 8, 35, 35]
    assert [8.0, 8.0, 35.0, 35.0] in anchors.tolist() and anchors[0].tolist() == [0.0, 0.0, 27.0, 27.0]


def test_bins_follow_float64_products():
    iou, bins = anchor_bins(all_targets(), mnist_anchors())
    exact_03 = iou == 0.3
    assert int(exact_03.sum()) == 4136
    assert (bins[exact_03] == 2).all()  # 0.3 < 3 * 0.1 in float64: bin 2, not floor(10 * 0.3) = 3
    assert (bins[iou >= 1.0] == -1).all() and int((iou >= 1.0).sum()) > 0
    inside = bins >= 0
    low = bins[inside].double()
    assert ((low * 0.1 <= iou[inside]) & (iou[inside] < (low + 1) * 0.1)).all()


def test_anchor_pairs_draw_bins_uniformly_among_nonempty_bins():
    target = torch.tensor([[20.0, 30.0, 47.0, 57.0]])
    anchors = mnist_anchors()
    _, bins = anchor_bins(target, anchors)
    nonempty = sorted(set(bins[0][bins[0] >= 0].tolist()))
    generator = torch.Generator().manual_seed(0)
    boxes, ious = draw_anchor_pairs(target.expand(4000, 4), generator)
    assert boxes.shape == (4000, 2, 4) and ious.shape == (4000, 2)
    # every drawn box is an anchor, and its IoU is the anchor's
    drawn_iou, drawn_bins = anchor_bins(target, boxes.reshape(-1, 4).double())
    assert torch.allclose(drawn_iou[0], ious.reshape(-1))
    counts = np.bincount(drawn_bins[0].numpy(), minlength=10)[nonempty]
    expected = 8000 / len(nonempty)
    assert counts.sum() == 8000
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))  # uniform over non-empty bins


def test_anchor_pairs_uniform_within_a_bin():
    """Within a bin every anchor (each copy of a duplicate counts) is drawn equally often."""
    target = torch.tensor([[20.0, 30.0, 47.0, 57.0]])
    anchors = mnist_anchors()
    _, bins = anchor_bins(target, anchors)
    sizes = torch.bincount(bins[0][bins[0] >= 0], minlength=10)
    nonempty = int((sizes > 0).sum())
    chosen = int(torch.nonzero((sizes >= 5) & (sizes <= 40))[-1])  # a bin with few members
    generator = torch.Generator().manual_seed(1)
    boxes = torch.cat([draw_anchor_pairs(target.expand(4000, 4), generator)[0] for _ in range(5)]).reshape(-1, 4).double()
    drawn = boxes[anchor_bins(target, boxes)[1][0] == chosen]
    members = anchors[bins[0] == chosen]
    distinct, multiplicity = torch.unique(members, dim=0, return_counts=True)
    hits = ((drawn[:, None, :] == distinct[None]).all(dim=-1)).sum(dim=0)  # draws per distinct box
    assert int(hits.sum()) == len(drawn)  # every draw of the bin is one of its anchors
    expected = 40000 / nonempty * multiplicity.double() / len(members)
    assert (torch.abs(hits - expected) < 5 * expected.sqrt() + 1).all()


def test_groups_and_prototypes_by_hand():
    emb = torch.arange(12.0).view(6, 2)  # K = 2: groups {0, 1}, {2, 3}, {4, 5}
    protos = group_prototypes(emb, 2)
    assert protos.tolist() == [[1, 2], [1, 2], [5, 6], [5, 6], [9, 10], [9, 10]]
    perm = torch.tensor([2, 0, 1])
    assert group_prototypes(emb, 2, perm).tolist() == [[9, 10], [9, 10], [1, 2], [1, 2], [5, 6], [5, 6]]
    assert permute_groups(emb, 2, perm)[:, 0].tolist() == [8, 10, 0, 2, 4, 6]
    assert used_count(53, 5) == 50 and used_count(4, 5) == 0


def test_ordered_correctly_ties():
    d = torch.tensor([1.0, 2.0, 1.0, 1.0])
    e = torch.tensor([2.0, 1.0, 1.0, 2.0])
    iou_i = torch.tensor([0.5, 0.5, 0.3, 0.3])
    iou_j = torch.tensor([0.1, 0.1, 0.3, 0.3])
    assert ordered_correctly(d, e, iou_i, iou_j).tolist() == [True, False, True, False]


def test_encoder_matches_published_layout():
    encoder = RoIEncoder()
    assert sum(p.numel() for p in encoder.parameters()) == 3_780_041
    keys = {k.rsplit(".", 1)[0] for k in encoder.state_dict()}
    assert keys == {"encoder.0", "encoder.2", "encoder.4", "decoder.0", "decoder.2", "decoder.4", "RCNN_top.0", "RCNN_top.3"}
    images = torch.randn(3, 1, 84, 84)
    features = encoder.features(images)
    assert features.shape == (3, 64, 42, 42)
    reconstruction, embedding = encoder(images, torch.tensor([[0.0, 0, 83, 83], [10, 10, 40, 40], [5, 6, 50, 60]]))
    assert reconstruction.shape == (3, 1, 84, 84) and embedding.shape == (3, 512)
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    roi = encoder.roi_features(features, torch.tensor([[1.0, 10, 10, 40, 40]]))
    assert roi.shape == (1, 64, 7, 7)
    encoder.eval()
    assert torch.allclose(encoder.project(roi), encoder.embed(features, torch.tensor([[1.0, 10, 10, 40, 40]])))
    # an original checkpoint (same keys) loads strictly
    RoIEncoder().load_state_dict(encoder.state_dict(), strict=True)


def test_roi_agent_sequence_equals_steps():
    torch.manual_seed(0)
    agent = RoIAgent().double()
    assert sum(p.numel() for p in agent.parameters()) == 80_234
    assert {k.rsplit(".", 1)[0] for k in agent.state_dict()} == {"conv.0", "i2h", "h2h", "fc"}
    states = torch.randn(4, 10, 64, 7, 7, dtype=torch.float64)
    h, stepped = None, []
    for t in range(10):
        h, logits = agent.step(states[:, t], h)
        stepped.append(logits)
    assert torch.allclose(agent.sequence_logits(states), torch.stack(stepped, dim=1))


def test_prototype_reward_sign():
    prototype = torch.tensor([[0.0, 0.0]])
    steps = torch.tensor([[[4.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])  # closer, then farther
    rewards, distances = step_rewards(prototype, steps)
    assert torch.allclose(rewards, torch.tensor([[2.0, -1.0]]), atol=1e-5)
    assert torch.equal(step_rewards(prototype, steps, sign=True)[0], torch.tensor([[1.0, -1.0]]))


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
    anchors, used = reward_anchors(encoder.eval(), encoder.features(torch.randn(7, 1, 84, 84)), targets,
                                   AgentConfig(group_size=3, train_mode="proto"), None)
    assert used == 6 and anchors.shape == (6, 512)
    assert torch.equal(anchors[0], anchors[2]) and not torch.equal(anchors[2], anchors[3])


def test_adaptation_updates_only_the_agent():
    torch.manual_seed(0)
    encoder, agent = RoIEncoder().requires_grad_(False), RoIAgent()
    images = torch.randn(8, 1, 84, 84)
    targets = torch.tensor([[x, x, x + 27, x + 27] for x in range(0, 56, 7)], dtype=torch.float32)
    loader = [(images, targets)]
    before_encoder = {k: v.clone() for k, v in encoder.state_dict().items()}
    before_agent = {k: v.clone() for k, v in agent.state_dict().items()}
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    config = AgentConfig(rollout=RolloutConfig(seq_len=4, inclusive=True), loop=LoopConfig())
    prototype = torch.randn(512)
    metrics, ious = agent_epoch(encoder, agent, loader, torch.device("cpu"), torch.Generator().manual_seed(0), config, 0,
                                optimizer, prototype=prototype)
    assert not encoder.training  # the frozen encoder stays in eval mode (no dropout in the rewards)
    assert all(torch.equal(before_encoder[k], v) for k, v in encoder.state_dict().items())
    assert all(not torch.equal(before_agent[k], v) for k, v in agent.state_dict().items())
    assert ious.shape == (8,) and set(metrics) == {"Train Pol Loss", "Train Rewards", "Train Loc Acc", "Train Ent Loss"}
