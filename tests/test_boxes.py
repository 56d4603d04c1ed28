"""utils/localization/boxes.py: IoUs, random squares and the ordinal box sampler (its distribution against
plain rejection sampling, its seeding and its errors)."""

import pytest
import torch
from torchvision.ops import box_iou

import utils.localization.boxes as boxes_module
from utils.errors import SamplerError
from utils.localization.boxes import box_iou_pairs, proposal_tables, random_square_boxes, sample_ordinal_boxes


def test_box_iou_pairs_is_torchvision_diagonal():
    torch.manual_seed(0)
    a = random_square_boxes((50,), "cpu")
    b = random_square_boxes((50,), "cpu")
    assert torch.allclose(box_iou_pairs(a, b), box_iou(a, b).diagonal())
    # worked by hand: [0,0,10,10] vs [5,5,15,15]: inter 25, union 100 + 100 - 25
    assert box_iou_pairs(torch.tensor([0, 0, 10, 10.0]), torch.tensor([5, 5, 15, 15.0])).item() == pytest.approx(25 / 175)


def test_random_square_boxes_cover_the_allowed_range():
    generator = torch.Generator().manual_seed(0)
    boxes = random_square_boxes((200_000,), "cpu", generator)
    side = boxes[:, 2] - boxes[:, 0] + 1
    assert torch.equal(side, boxes[:, 3] - boxes[:, 1] + 1)
    assert side.min() == 28 and side.max() == 84
    assert boxes[:, :2].min() == 0 and boxes[:, 2:].max() == 83
    # top-left uniform over [0, 84 - s]: for s = 28 both ends are reached
    small = boxes[side == 28]
    assert small[:, 0].min() == 0 and small[:, 0].max() == 56


def test_sampler_statistics():
    generator = torch.Generator().manual_seed(0)
    xy = torch.randint(0, 57, (4000, 2), generator=generator).float()
    gt = torch.cat([xy, xy + 27], dim=1)
    boxes, ious = sample_ordinal_boxes(gt, num=2, generator=generator)
    assert boxes.shape == (4000, 2, 4) and ious.shape == (4000, 2)
    assert torch.allclose(ious, box_iou_pairs(boxes, gt[:, None, :]))
    high = (ious >= 0.5).float().mean().item()
    assert abs(high - 0.5) < 0.03  # 8,000 fair coins: std 0.0056
    assert ious.min() >= 0.1
    side = boxes[..., 2] - boxes[..., 0] + 1
    assert torch.equal(side, boxes[..., 3] - boxes[..., 1] + 1)
    assert side.min() >= 28 and side.max() <= 84
    assert boxes.min() >= 0 and boxes.max() <= 83
    # the two boxes of an item are independent draws
    assert not torch.equal(boxes[:, 0], boxes[:, 1])


def test_sampler_matches_one_at_a_time_rejection():
    """The bulk sampler has the distribution of plain rejection sampling (mean IoU per regime)."""
    generator = torch.Generator().manual_seed(1)
    gt = torch.tensor([[20.0, 30.0, 47.0, 57.0]])
    # a stream of candidates, each kept when it falls in the regime: plain rejection sampling
    candidates = random_square_boxes((400_000,), "cpu", generator)
    stream = box_iou_pairs(candidates, gt)
    reference = {True: stream[stream >= 0.5], False: stream[(stream >= 0.1) & (stream < 0.5)]}
    _, ious = sample_ordinal_boxes(gt.expand(3000, 4), num=2, generator=generator)
    for high in (True, False):
        mine = ious[(ious >= 0.5) == high]
        ref = reference[high]
        assert abs(mine.mean().item() - ref.mean().item()) < 0.01
        assert abs(mine.std().item() - ref.std().item()) < 0.01


def test_sampler_is_seeded():
    gt = torch.tensor([[0.0, 0.0, 27.0, 27.0], [56.0, 56.0, 83.0, 83.0]])
    first = sample_ordinal_boxes(gt, generator=torch.Generator().manual_seed(5))
    second = sample_ordinal_boxes(gt, generator=torch.Generator().manual_seed(5))
    third = sample_ordinal_boxes(gt, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first[0], second[0])
    assert not torch.equal(first[0], third[0])


def all_candidate_squares():
    """Every candidate square of the sampler (63,365) and the original proposal's probability of each."""
    boxes, probs = [], []
    for side in range(28, 85):
        positions = torch.arange(0, 85 - side)
        x, y = (grid.flatten() for grid in torch.meshgrid(positions, positions, indexing="ij"))
        boxes.append(torch.stack([x, y, x + side - 1, y + side - 1], dim=1).float())
        probs.append(torch.full((len(x),), 1.0 / 57 / (85 - side) ** 2, dtype=torch.float64))
    return torch.cat(boxes), torch.cat(probs)


@pytest.mark.parametrize("corner", [(0, 0), (56, 56), (0, 41), (23, 30), (56, 7)])
def test_proposal_holds_every_acceptable_box_and_accepts_often(corner):
    """The restricted proposal covers each regime's whole accepted set (so the accepted distribution is
    the original's) and accepts at least 40% of its candidates wherever the digit is."""
    boxes, _ = all_candidate_squares()
    side = (boxes[:, 2] - boxes[:, 0] + 1).long()
    x, y = corner
    gt = torch.tensor([[x, y, x + 27, y + 27.0]])
    ious = box_iou_pairs(boxes, gt)
    for high in (False, True):
        accepted = ious >= 0.5 if high else (ious >= 0.1) & (ious < 0.5)
        low, count, cdf = proposal_tables(gt, torch.tensor([high]))
        lo, n = low[0, side - 28], count[0, side - 28]
        inside = ((boxes[:, :2].long() >= lo) & (boxes[:, :2].long() < lo + n)).all(dim=1)
        assert inside[accepted].all()
        acceptance = (1.0 / (85 - side[accepted]).double() ** 2).sum() / cdf[0, -1]
        assert acceptance > 0.4


def test_sampled_sides_follow_the_exact_rejection_distribution():
    """Per regime, the sides of sampled boxes against the exact distribution of one-at-a-time
    rejection sampling, enumerated over all candidate squares (total variation distance)."""
    boxes, probs = all_candidate_squares()
    side = (boxes[:, 2] - boxes[:, 0] + 1).long()
    gt = torch.tensor([[3.0, 50.0, 30.0, 77.0]])
    ious = box_iou_pairs(boxes, gt)
    sampled, sampled_ious = sample_ordinal_boxes(gt.expand(20000, 4), num=1, generator=torch.Generator().manual_seed(3))
    sampled_side = (sampled[:, 0, 2] - sampled[:, 0, 0] + 1).long()
    for high in (False, True):
        accepted = ious >= 0.5 if high else (ious >= 0.1) & (ious < 0.5)
        exact = torch.zeros(85, dtype=torch.float64).index_add_(0, side[accepted], probs[accepted])
        exact /= exact.sum()
        mine = sampled_ious[:, 0] >= 0.5 if high else sampled_ious[:, 0] < 0.5
        empirical = torch.bincount(sampled_side[mine], minlength=85).double()
        empirical /= empirical.sum()
        assert 0.5 * (exact - empirical).abs().sum() < 0.03  # ~10,000 draws per regime


def test_a_box_without_an_accepted_candidate_is_reported_not_used(monkeypatch):
    """With a block of one candidate most boxes find none: the flag says so and the public sampler
    raises, so an unaccepted box never reaches training."""
    gt = torch.tensor([[0.0, 0.0, 27.0, 27.0]]).expand(200, 4)
    monkeypatch.setattr(boxes_module, "BLOCK", 1)
    *_, unfinished = boxes_module.draw_ordinal_boxes(gt, num=2, generator=torch.Generator().manual_seed(0))
    assert bool(unfinished)
    with pytest.raises(boxes_module.SamplerError, match="no box of the wanted IoU regime"):
        boxes_module.sample_ordinal_boxes(gt, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(boxes_module, "BLOCK", 128)
    boxes, ious, unfinished = boxes_module.draw_ordinal_boxes(gt, num=2, generator=torch.Generator().manual_seed(0))
    assert not bool(unfinished) and torch.allclose(ious, box_iou_pairs(boxes, gt[:, None, :]))


@pytest.mark.parametrize("bad", [[10.0, 10.0, 10.0, 10.0], [200.0, 200.0, 227.0, 227.0]])
def test_degenerate_ground_truth_is_a_clear_error_not_a_hang(bad):
    with pytest.raises(SamplerError):
        sample_ordinal_boxes(torch.tensor([bad]), generator=torch.Generator().manual_seed(0))
