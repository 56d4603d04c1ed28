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
    """Histogram of the IoUs of the ordinal pairs' two boxes (docs/method.md §7 `IoU Distribution`)."""
    pair_ious = np.asarray(pair_ious, dtype=np.float64).reshape(-1, 2)
    figure, axis = plt.subplots(figsize=(5, 3.2))
    bins = np.linspace(0.0, 1.0, 21)
    axis.hist([pair_ious[:, 0], pair_ious[:, 1]], bins=bins, label=["box i", "box j"], color=["tab:blue", "tab:orange"])
    axis.set_xlabel("IoU with the ground truth")
    axis.set_ylabel("boxes")
    axis.set_title(title)
    axis.legend()
    return save_figure(figure, path)


# Glyph of each action id (docs/method.md §5): arrows for shrinks and moves, a dot for stay.
ACTION_GLYPHS = ["\u2196", "\u2197", "\u2199", "\u2198", "\u2299", "\u2022", "\u2190", "\u2192", "\u2191", "\u2193"]


def draw_box(axis, box, color, width=1.5):
    """`[x1, y1, x2, y2]` inclusive pixel box as a rectangle over pixel centres' edges."""
    x1, y1, x2, y2 = (float(v) for v in box)
    axis.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1 + 1, y2 - y1 + 1, fill=False, edgecolor=color, linewidth=width))


def trajectory_figure(images, boxes, actions, targets, path, title=None):
    """One row per image, one column per step 0..T: the agent's box in red, the ground truth in
    green on the last frame, the action taken to reach each frame as a glyph.

    images (R, 84, 84) uint8; boxes (R, T + 1, 4); actions (R, T) int; targets (R, 4).
    """
    rows, columns = boxes.shape[0], boxes.shape[1]
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows), squeeze=False)
    for r in range(rows):
        for t in range(columns):
            axis = axes[r, t]
            axis.imshow(images[r], cmap="gray", vmin=0, vmax=255)
            draw_box(axis, boxes[r, t], "red")
            if t == columns - 1:
                draw_box(axis, targets[r], "lime")
            if t > 0:
                axis.text(4, 12, ACTION_GLYPHS[int(actions[r, t - 1])], color="yellow", fontsize=11, fontweight="bold")
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(f"step {t}", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.subplots_adjust(wspace=0.03, hspace=0.03)
    return save_figure(figure, path)


def distance_scatter(ious, distances, rho, path, title):
    """Embedding distance to the ground truth against IoU, one dot per random box."""
    figure, axis = plt.subplots(figsize=(5, 3.6))
    axis.scatter(np.asarray(ious), np.asarray(distances), s=3, alpha=0.35, color="tab:blue")
    axis.set_xlabel("IoU with the ground truth")
    axis.set_ylabel("distance to the ground-truth embedding")
    axis.set_title(f"{title}\nSpearman rho = {rho:.3f}", fontsize=9)
    return save_figure(figure, path)


def embedding_projection(embeddings, ious, path, title):
    """2-D PCA projection of box embeddings, coloured by the boxes' IoU with the ground truth."""
    from sklearn.decomposition import PCA

    points = PCA(n_components=2).fit_transform(np.asarray(embeddings, dtype=np.float64))
    figure, axis = plt.subplots(figsize=(5, 4))
    dots = axis.scatter(points[:, 0], points[:, 1], c=np.asarray(ious), s=3, cmap="viridis", vmin=0, vmax=1)
    figure.colorbar(dots, ax=axis, label="IoU with the ground truth")
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.set_title(title, fontsize=9)
    return save_figure(figure, path)


def reconstruction_figure(images, reconstructions, path, title):
    """Two rows: the input images (uint8 or float) above the decoder's reconstructions of the same images."""
    images, reconstructions = np.asarray(images), np.asarray(reconstructions)
    count = len(images)
    figure, axes = plt.subplots(2, count, figsize=(1.1 * count, 2.5), squeeze=False)
    for column in range(count):
        for row, picture in enumerate((images[column], reconstructions[column])):
            axes[row, column].imshow(picture.reshape(picture.shape[-2:]), cmap="gray")
            axes[row, column].axis("off")
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path)
