"""utils/successor/anchors.py `real_anchors`: Faster R-CNN's stride-16 anchors of real images (15 ratios,
scales 2..12, clipped, min side 25) and the ordinal pair sampler drawing from them."""

import numpy as np
import torch
from torchvision.ops import box_iou

from utils.successor.anchors import REAL_ANCHOR_RATIOS, draw_anchor_pairs, mnist_anchors, real_anchors

BASE_SHAPES = [(29, 9), (22, 12), (18, 14), (16, 16), (15, 18), (13, 19), (12, 20), (12, 23), (11, 23),
               (10, 24), (10, 26), (10, 28), (9, 27), (9, 29), (9, 32)]


def test_ratio_shapes_round_half_to_even():
    w0 = np.round(np.sqrt(256 / REAL_ANCHOR_RATIOS))
    assert list(zip(w0.astype(int).tolist(), np.round(w0 * REAL_ANCHOR_RATIOS).astype(int).tolist())) == BASE_SHAPES


def test_counts_sides_and_half_integers_at_224():
    anchors = real_anchors()
    assert anchors.dtype == torch.float64 and anchors.shape == (29_824, 4)
    assert len({tuple(box) for box in anchors.tolist()}) == 27_222
    for lo, hi in ((0, 2), (1, 3)):
        side = anchors[:, hi] - anchors[:, lo]
        assert side.min() == 25 and side.max() == 223
    assert anchors.min() == 0 and anchors.max() == 223
    half = anchors.frac() != 0
    assert (anchors.frac()[half] == 0.5).all()
    assert 0.14 < half.double().mean() < 0.16  # 15.3% of the coordinates (25.7% of anchors have one)
    assert real_anchors(224) is anchors  # cached


def test_order_is_shift_major_then_ratio_then_scale():
    """Plain loops in the original's order: shifts (y outer, x inner), then ratios, then scales."""
    expected = []
    for y in range(0, 224, 16):
        for x in range(0, 224, 16):
            for w0, h0 in BASE_SHAPES:
                for s in range(2, 13):
                    w, h = s * w0, s * h0
                    box = [min(max(v, 0), 223) for v in (x + 7.5 - (w - 1) / 2, y + 7.5 - (h - 1) / 2,
                                                         x + 7.5 + (w - 1) / 2, y + 7.5 + (h - 1) / 2)]
                    if box[2] - box[0] + 1 >= 25 and box[3] - box[1] + 1 >= 25:
                        expected.append(box)
    assert real_anchors().tolist() == expected


def test_other_sizes_and_mnist_unchanged():
    anchors = real_anchors(160)
    assert anchors.max() == 159 and (anchors[:, 2:] - anchors[:, :2] + 1 >= 25).all()
    assert len(anchors) < len(real_anchors(224))
    assert mnist_anchors().shape == (4837, 4)


def test_pairs_from_real_anchors():
    targets = torch.tensor([[10.0, 20.0, 120.0, 200.0], [50.0, 50.0, 99.0, 99.0], [0.0, 0.0, 223.0, 223.0]])
    generator = torch.Generator().manual_seed(0)
    boxes, ious = draw_anchor_pairs(targets, generator, anchors=real_anchors(224, targets.device))
    assert boxes.shape == (3, 2, 4) and boxes.dtype == torch.float32 and ious.shape == (3, 2)
    assert boxes.min() >= 0 and boxes.max() <= 223
    for b in range(3):
        assert torch.allclose(box_iou(boxes[b].double(), targets[b : b + 1].double())[:, 0], ious[b])
    assert {tuple(box) for box in boxes.reshape(-1, 4).tolist()} <= {tuple(box) for box in real_anchors().tolist()}
