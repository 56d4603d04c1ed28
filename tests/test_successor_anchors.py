"""utils/successor/anchors.py: the successor's anchor boxes, their IoU bins (float64 products) and the
anchor pairs drawn uniformly over non-empty bins and within a bin (docs/method.md §10)."""

import numpy as np
import torch

from utils.successor.anchors import anchor_bins, draw_anchor_pairs, mnist_anchors


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
