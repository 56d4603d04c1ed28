"""The ordinal triplet loss and its accuracy metrics (docs/method.md §4, §7)."""

import torch
import torch.nn.functional as F


def ordinal_terms(f_gt, f_i, f_j, iou_i, iou_j, margin):
    """Triplet ordinal loss of one batch and its per-item correctness.

    f_gt, f_i, f_j: (N, D) embeddings of the ground truth and two boxes; iou_i, iou_j: (N,).
    The positive is the box with the larger IoU (ties: box i), the negative the other;
    loss = TripletMarginLoss(margin, p=2)(f_gt, f_pos, f_neg) (mean over the batch).
    `inst` / `proto` are (N,) bools: sign(d(a, f_i) - d(a, f_j)) == sign(iou_j - iou_i) with the
    anchor a = f_gt, or the batch mean of f_gt.
    """
    # Each row's distances once: d(f_gt, f_pos) is d_i or d_j, row by row the same numbers as
    # pairwise_distance(f_gt, where(i_is_positive, f_i, f_j)).
    d_i, d_j = F.pairwise_distance(f_gt, f_i), F.pairwise_distance(f_gt, f_j)
    loss = triplet_loss(d_i, d_j, iou_i, iou_j, margin)
    with torch.no_grad():
        target_sign = torch.sign(iou_j - iou_i)  # once for both metrics (`ordered_correctly` written out)
        inst = torch.sign(d_i - d_j) == target_sign
        prototype = f_gt.mean(dim=0, keepdim=True)
        proto = torch.sign(F.pairwise_distance(prototype, f_i) - F.pairwise_distance(prototype, f_j)) == target_sign
    return {"loss": loss, "inst": inst, "proto": proto}


def triplet_loss(d_i, d_j, iou_i, iou_j, margin):
    """Mean triplet loss from an anchor's distances d_i, d_j (N,) to two boxes: the positive is the
    box with the larger IoU (ties: box i). = nn.TripletMarginLoss(margin, p=2) written out: recent
    torch rejects margin <= 0, and the 2021 default --margin is 0.0 (tests check equality with the
    module for margin > 0)."""
    return (torch.where(iou_i >= iou_j, d_i - d_j, d_j - d_i) + margin).clamp(min=0).mean()


def ordered_correctly(d_i, d_j, iou_i, iou_j):
    """(N,) bool: sign(d_i - d_j) == sign(iou_j - iou_i), so a pair with equal IoUs counts as
    correct only when both distances are exactly equal."""
    return torch.sign(d_i - d_j) == torch.sign(iou_j - iou_i)
