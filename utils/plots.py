"""Figures written as PNG files in the run folder (and logged to wandb as images)."""

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on training boxes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from utils.run.folder import METRICS_FILE, read_owner  # noqa: E402
from utils.run.logging import read_records  # noqa: E402


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


PHASES = ("Train", "Val", "Test")


def phase_free(name):
    """'Test Loc Acc' -> 'Loc Acc' (a metric name without its split)."""
    for phase in PHASES:
        if name.startswith(phase + " "):
            return name[len(phase) + 1:]
    return name


def training_records(records):
    """The last record of each training epoch (those with `learning rate`), by epoch."""
    by_epoch = {}
    for record in records:
        if "learning rate" in record:
            by_epoch[int(record["epoch"])] = record
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def series(records, name):
    """(epochs, values) of a metric over the records that hold it as a number."""
    points = [(record["epoch"], record[name]) for record in records if isinstance(record.get(name), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def curves_figure(records, selection, path, title):
    """Learning curves of one run from its metrics.jsonl records: the selection metric on every split
    with the chosen epoch (the first best) marked, each loss on every split, the learning rates; the
    end-of-run figures "Before" (adaptation) as dashed lines. Returns (path, data), where data maps each
    panel's title to {line label: (epochs, values)} as drawn, plus "chosen epoch"."""
    epochs_records = training_records(records)
    summaries = [record for record in records if "learning rate" not in record]
    family = phase_free(selection)
    names = sorted({name for record in epochs_records for name in record}, key=lambda n: (phase_free(n), n))
    losses = sorted({phase_free(name) for name in names if name.endswith("Loss")})
    panels = [(f"{family} (selection: {selection})", [f"{phase} {family}{greedy}" for greedy in ("", " Greedy") for phase in PHASES])]
    panels += [(loss, [f"{phase} {loss}" for phase in PHASES]) for loss in losses]
    panels.append(("learning rates", [name for name in names if name.startswith("learning rate")]))
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.2 * rows), squeeze=False)
    chosen_epochs, chosen_values = series(epochs_records, selection)
    chosen = chosen_epochs[int(np.argmax(chosen_values))] if chosen_values else None
    data = {"chosen epoch": chosen}
    for axis, (panel, wanted) in zip(axes.flat, panels):
        for name in wanted:
            epochs, values = series(epochs_records, name)
            if epochs and not (panel == "learning rates" and max(values) <= 0):  # a frozen net's rate is 0
                axis.plot(epochs, values, label=name, linewidth=1.2)
        if panel.startswith(family):
            if chosen is not None:
                axis.axvline(chosen, color="gray", linestyle=":", linewidth=1)
                axis.plot([chosen], [max(chosen_values)], "k*", markersize=9, label=f"chosen: epoch {chosen}")
            for summary in summaries:
                for name, value in summary.items():
                    if name.endswith(f" Before {family}") and isinstance(value, (int, float)):
                        axis.axhline(value, linestyle="--", linewidth=1, color="tab:red" if name.startswith("Test") else "tab:purple",
                                     label=name)
        if panel == "learning rates" and axis.get_lines():
            axis.set_yscale("log")
        axis.set_title(panel, fontsize=9)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axis.get_lines():
            axis.legend(fontsize=7)
        data[panel] = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axis.get_lines()
                       if not line.get_label().startswith("_")}
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path), data


def draw_run_curves(run_dir, title=None):
    """`<run_dir>/curves.png` from the run's own metrics.jsonl (the selection metric as run.json records
    it) -> (path, data) as `curves_figure`, or (None, None) before the first complete epoch."""
    records = read_records(os.path.join(run_dir, METRICS_FILE))
    selection = read_owner(run_dir).get("selection")
    if selection is None or not training_records(records):
        return None, None
    path, data = curves_figure(records, selection, os.path.join(run_dir, "curves.png"), title or os.path.basename(os.path.normpath(run_dir)))
    print(f"learning curves -> {path}")
    return path, data


def trajectory_gif(images, boxes, actions, targets, path, title=None, columns=None, row_labels=None, fps=2):
    """The trajectories as an animated GIF, one frame per step 0..T (T + 1 frames): each image's box in
    red, its ground truth in green, the action that led to the frame as a glyph. images (R, 84, 84)
    uint8, boxes (R, T + 1, 4), actions (R, T), targets (R, 4); the R panels fill a grid of `columns`
    (default: rows of at most 8), each grid row optionally labelled (`row_labels`, e.g. before / after)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    count, frames = boxes.shape[0], boxes.shape[1]
    columns = columns or min(count, 8)  # a wide --visualize wraps onto more rows
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows + 0.4), squeeze=False)

    def draw(t):
        for index, axis in enumerate(axes.flat):
            axis.clear()
            axis.set_xticks([])
            axis.set_yticks([])
            if index >= count:
                axis.axis("off")
                continue
            axis.imshow(images[index], cmap="gray", vmin=0, vmax=255)
            draw_box(axis, targets[index], "lime")
            draw_box(axis, boxes[index, t], "red")
            if t > 0:
                axis.text(4, 12, ACTION_GLYPHS[int(actions[index, t - 1])], color="yellow", fontsize=11, fontweight="bold")
            if row_labels is not None and index % columns == 0:
                axis.set_ylabel(row_labels[index // columns], fontsize=8)
        figure.suptitle(f"{title + ': ' if title else ''}step {t} of {frames - 1}", fontsize=9)

    animation = FuncAnimation(figure, draw, frames=frames, interval=1000 // fps)
    animation.save(path, writer=PillowWriter(fps=fps))
    plt.close(figure)
    return path
