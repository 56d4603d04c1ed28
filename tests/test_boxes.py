import pytest
import torch
from torchvision.ops import box_iou

from utils.boxes import box_iou_pairs, random_square_boxes, sample_ordinal_boxes


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
