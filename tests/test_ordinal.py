"""utils/localization/ordinal.py: the ordinal (triplet) loss and the instance / prototype ordering accuracies."""

import torch
import torch.nn as nn

from utils.localization.ordinal import ordered_correctly, ordinal_terms


def test_positive_is_higher_iou_with_ties_to_box_i():
    torch.manual_seed(0)
    f_gt, f_i, f_j = torch.randn(3, 6, 8).unbind(0)
    iou_i = torch.tensor([0.9, 0.2, 0.5, 0.5, 0.1, 0.7])
    iou_j = torch.tensor([0.1, 0.8, 0.5, 0.6, 0.1, 0.2])
    terms = ordinal_terms(f_gt, f_i, f_j, iou_i, iou_j, margin=1.5)
    i_pos = torch.tensor([True, False, True, False, True, True])[:, None]
    pos, neg = torch.where(i_pos, f_i, f_j), torch.where(i_pos, f_j, f_i)
    expected = nn.TripletMarginLoss(margin=1.5, p=2)(f_gt, pos, neg)
    assert torch.allclose(terms["loss"], expected)
    # by hand: max(d(a,p) - d(a,n) + margin, 0), mean
    d = lambda a, b: (a - b + 1e-6).norm(dim=1)
    assert torch.allclose(terms["loss"], (d(f_gt, pos) - d(f_gt, neg) + 1.5).clamp(min=0).mean())


def test_accuracy_metrics_on_hand_made_distances():
    f_gt = torch.zeros(4, 1)
    f_gt[3] = 10.0  # moves the prototype (batch mean 2.5) but not instance 0..2's anchors
    f_i = torch.tensor([[1.0], [5.0], [2.0], [11.0]])
    f_j = torch.tensor([[3.0], [4.0], [2.0], [13.0]])
    iou_i = torch.tensor([0.9, 0.9, 0.4, 0.3])
    iou_j = torch.tensor([0.2, 0.2, 0.4, 0.6])
    terms = ordinal_terms(f_gt, f_i, f_j, iou_i, iou_j, margin=0.0)
    # instance: d_i<d_j & iou_i>iou_j ok; d_i>d_j wrong; tie & tie ok; d_i=1<d_j=3 but iou_i<iou_j wrong
    assert terms["inst"].tolist() == [True, False, True, False]
    # prototype 2.5: d_i = 1.5, 2.5, 0.5, 8.5; d_j = 0.5, 1.5, 0.5, 10.5
    assert terms["proto"].tolist() == [False, False, True, False]


def test_ordered_correctly_ties():
    d = torch.tensor([1.0, 2.0, 1.0, 1.0])
    e = torch.tensor([2.0, 1.0, 1.0, 2.0])
    iou_i = torch.tensor([0.5, 0.5, 0.3, 0.3])
    iou_j = torch.tensor([0.1, 0.1, 0.3, 0.3])
    assert ordered_correctly(d, e, iou_i, iou_j).tolist() == [True, False, True, False]
