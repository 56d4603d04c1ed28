"""Stable import path of the box helpers and the ordinal box sampler (`from utils.boxes import
sample_ordinal_boxes`); the code lives in utils/localization/boxes.py."""

from utils.localization.boxes import box_iou_pairs, random_square_boxes, sample_ordinal_boxes  # noqa: F401
