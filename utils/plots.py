"""Figures written as PNG files in the run folder (and logged to wandb as images)."""

import matplotlib

matplotlib.use("Agg")  # files only; no display on training boxes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(figure, path):
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def iou_histogram(pair_ious, path, title):
    """Histogram of the IoUs of the ordinal pairs' two boxes (SPEC §7 `IoU Distribution`)."""
    pair_ious = np.asarray(pair_ious, dtype=np.float64).reshape(-1, 2)
    figure, axis = plt.subplots(figsize=(5, 3.2))
    bins = np.linspace(0.0, 1.0, 21)
    axis.hist([pair_ious[:, 0], pair_ious[:, 1]], bins=bins, label=["box i", "box j"], color=["tab:blue", "tab:orange"])
    axis.set_xlabel("IoU with the ground truth")
    axis.set_ylabel("boxes")
    axis.set_title(title)
    axis.legend()
    return save_figure(figure, path)
