"""Anchor boxes and the binned ordinal pair sampler of the successor's encoder pretraining
(docs/method.md §10.3), vectorised over the batch on the device."""

import functools

import numpy as np
import torch
from torchvision.ops import box_iou

from utils.data.clutter import IMAGE_SIZE

ANCHOR_SCALES = range(7, 20)  # s: a 4s-pixel square
ANCHOR_GRID = 21  # centres on a stride-4 grid, i, j in 0..20
MIN_ANCHOR_SIDE = 28  # inclusive sides
NUM_BINS = 10  # IoU bins [0.1 j, 0.1 (j + 1))


@functools.lru_cache(maxsize=4)
def _anchors(device):
    s, i, j = torch.meshgrid(torch.tensor(ANCHOR_SCALES), torch.arange(ANCHOR_GRID), torch.arange(ANCHOR_GRID), indexing="ij")
    boxes = torch.stack([4 * i + 2 - 2 * s, 4 * j + 2 - 2 * s, 4 * i + 2 * s + 1, 4 * j + 2 * s + 1], dim=-1).view(-1, 4)
    boxes = boxes.clamp(0, IMAGE_SIZE - 1)
    sides = boxes[:, 2:] - boxes[:, :2] + 1
    # duplicates (clipped squares) are kept: they weight the sampling as in the original
    return boxes[(sides >= MIN_ANCHOR_SIDE).all(dim=1)].to(device=device, dtype=torch.float64)


def mnist_anchors(device="cpu"):
    """(4837, 4) float64 anchors `[x1, y1, x2, y2]` (x2 inclusive): for s in 7..19 and i, j in 0..20
    the square `[4i+2-2s, 4j+2-2s, 4i+2s+1, 4j+2s+1]` clipped to the image, kept when both inclusive
    sides are >= 28 (3,621 distinct boxes)."""
    return _anchors(str(torch.empty(0, device=device).device))


# real images (VGG16, stride 16): Faster R-CNN's `generate_anchors` on a 16-pixel base window
REAL_ANCHOR_RATIOS = np.linspace(0.3, 3.5, 15)  # height / width
REAL_ANCHOR_SCALES = np.arange(2, 13)
REAL_ANCHOR_STRIDE = 16
MIN_REAL_ANCHOR_SIDE = 25  # inclusive sides


@functools.lru_cache(maxsize=4)
def _real_anchors(image_size, device):
    # _ratio_enum: same area 256, numpy rounding (half to even) as the original
    w0 = np.round(np.sqrt(REAL_ANCHOR_STRIDE**2 / REAL_ANCHOR_RATIOS))
    h0 = np.round(w0 * REAL_ANCHOR_RATIOS)
    # _scale_enum about the base window's centre 7.5: ratio-major, scale-minor
    w, h = (w0[:, None] * REAL_ANCHOR_SCALES).ravel(), (h0[:, None] * REAL_ANCHOR_SCALES).ravel()
    c = (REAL_ANCHOR_STRIDE - 1) / 2
    shapes = np.stack([c - (w - 1) / 2, c - (h - 1) / 2, c + (w - 1) / 2, c + (h - 1) / 2], axis=1)
    # shifts as the original's meshgrid (y outer, x inner), every shape at a shift before the next shift
    shift_x, shift_y = np.meshgrid(np.arange(image_size // REAL_ANCHOR_STRIDE) * REAL_ANCHOR_STRIDE,
                                   np.arange(image_size // REAL_ANCHOR_STRIDE) * REAL_ANCHOR_STRIDE)
    shifts = np.stack([shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel()], axis=1)
    boxes = (shapes[None] + shifts[:, None]).reshape(-1, 4).clip(0, image_size - 1)
    sides = boxes[:, 2:] - boxes[:, :2] + 1
    # duplicates (clipped boxes) are kept, as for the MNIST anchors
    return torch.from_numpy(boxes[(sides >= MIN_REAL_ANCHOR_SIDE).all(axis=1)]).to(device=device, dtype=torch.float64)


def real_anchors(image_size=224, device="cpu"):
    """(A, 4) float64 anchors `[x1, y1, x2, y2]` (x2 inclusive) of real images: Faster R-CNN's anchors
    on the stride-16 grid, 15 ratios (height / width) in linspace(0.3, 3.5) and scales 2..12 of a 16-pixel
    window, at positions i, j in 0..(image_size // 16 - 1), clipped to the image, kept when both inclusive
    sides are >= 25. At 224: 29,824 anchors (27,222 distinct; some coordinates are half-integers)."""
    return _real_anchors(int(image_size), str(torch.empty(0, device=device).device))


@functools.lru_cache(maxsize=4)
def _bin_edges(device):
    # j * 0.1 in float64, as the original's comparisons: IoU exactly 0.3 lands in bin 2 (0.3 < 3 * 0.1)
    return torch.tensor([j * 0.1 for j in range(1, NUM_BINS + 1)], dtype=torch.float64, device=device)


def anchor_bins(targets, anchors):
    """IoU of every target with every anchor and its bin -> (iou (B, A) float64, bin (B, A) int64).

    Bin j holds `j * 0.1 <= IoU < (j + 1) * 0.1` (float64 products); IoU = 1 falls in no bin (-1).
    """
    iou = box_iou(targets.to(torch.float64), anchors)
    edges = _bin_edges(str(iou.device))
    bins = torch.bucketize(iou, edges[:-1], right=True)  # the number of edges j * 0.1 (j >= 1) <= IoU
    return iou, torch.where(iou < edges[-1], bins, -1)


def draw_anchor_pairs(targets, generator=None, anchors=None):
    """Two ordinal boxes per target: two bins drawn uniformly (with replacement) among the target's
    non-empty bins, then one anchor uniformly within each bin (so both may be the same box).

    targets: (B, 4) `[x1, y1, x2, y2]`. Returns boxes (B, 2, 4) float32 and their IoUs (B, 2) float64.
    No host sync: each target's anchors are sorted by bin (stably), so the r-th anchor of bin j sits
    at the bin's offset + r.
    """
    anchors = mnist_anchors(targets.device) if anchors is None else anchors
    iou, bins = anchor_bins(targets, anchors)
    batch, device = targets.shape[0], targets.device
    counts = torch.zeros(batch, NUM_BINS + 1, dtype=torch.long, device=device)
    counts.scatter_add_(1, bins + 1, torch.ones_like(bins))  # column 0: no bin (IoU = 1)
    offsets = counts.cumsum(dim=1) - counts  # (B, 11): where each bin starts in the sorted order
    counts, offsets = counts[:, 1:], offsets[:, 1:]
    nonempty = counts > 0
    uniform = torch.rand((2, batch, 2), device=device, generator=generator, dtype=torch.float64)
    # the k-th non-empty bin, k uniform in 0..(non-empty bins - 1)
    k = (uniform[0] * nonempty.sum(dim=1, keepdim=True)).long()  # (B, 2)
    rank_of_bin = nonempty.cumsum(dim=1) - 1  # (B, 10): the rank of each non-empty bin
    chosen_bin = ((rank_of_bin[:, None, :] == k[..., None]) & nonempty[:, None, :]).long().argmax(dim=-1)  # (B, 2)
    # the r-th anchor of that bin, r uniform in 0..(count - 1)
    r = (uniform[1] * counts.gather(1, chosen_bin)).long()
    order = torch.sort(bins, dim=1, stable=True).indices  # anchors by bin, in anchor order within a bin
    anchor_index = order.gather(1, offsets.gather(1, chosen_bin) + r)  # (B, 2)
    return anchors[anchor_index].to(torch.float32), iou.gather(1, anchor_index)
