"""utils/plots.py: every figure is written as a PNG you can look at (not one flat colour)."""

import numpy as np
import torch
from PIL import Image

from utils.plots import distance_scatter, embedding_projection, iou_histogram, trajectory_figure


def assert_png(path, min_size=(200, 150)):
    """Decodes as a PNG of at least `min_size` pixels that is not one flat colour."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert width >= min_size[0] and height >= min_size[1]
    assert pixels.std() > 5.0
    return width, height


def test_figures_are_written_and_not_blank(tmp_path):
    rng = np.random.default_rng(0)
    assert_png(iou_histogram(rng.random((200, 2)), str(tmp_path / "h.png"), "hist"))
    ious, distances = torch.rand(300), torch.rand(300) * 100
    assert_png(distance_scatter(ious, distances, -0.5, str(tmp_path / "s.png"), "scatter"))
    assert_png(embedding_projection(torch.randn(300, 16), ious, str(tmp_path / "p.png"), "pca"))
    images = rng.integers(0, 255, (3, 84, 84)).astype(np.uint8)
    boxes = torch.tensor([[0, 0, 83, 83]] * 5, dtype=torch.float32).expand(3, 5, 4)
    w, h = assert_png(trajectory_figure(images, boxes, torch.zeros(3, 4, dtype=torch.long), boxes[:, 0], str(tmp_path / "t.png")))
    assert w > h  # one column per step (5), one row per image (3)


def test_learning_curves_are_drawn_from_the_records(tmp_path):
    """The figure's lines are the records' values; the chosen epoch is the first best; adaptation's
    before figures are dashed lines; `--evaluate` records (no learning rate) are not epochs."""
    from utils.plots import curves_figure

    records = [{"epoch": e, "Train Loc Acc": 10.0 * e, "Test Loc Acc": test, "Train Pol Loss": -e, "Test Pol Loss": 1.0 - e,
                "learning rate": 0.01, "learning rate net": 0.0} for e, test in enumerate([5.0, 30.0, 30.0, 20.0])]
    records[1] = {**records[1], "Test Loc Acc": 1.0}  # a first try of epoch 1 ...
    records.insert(2, {"epoch": 1, "Train Loc Acc": 10.0, "Test Loc Acc": 30.0, "Train Pol Loss": -1, "Test Pol Loss": 0.0,
                       "learning rate": 0.01, "learning rate net": 0.0})  # ... logged again after a resume: the last one counts
    records.append({"epoch": 2, "Test Loc Acc": 99.0})  # an --evaluate record
    records.append({"epoch": 4, "Test Before Loc Acc": 12.5, "Train Before Loc Acc": 7.5, "Test Last Loc Acc": 20.0})
    path, data = curves_figure(records, "Test Loc Acc", str(tmp_path / "curves.png"), "a run")
    assert_png(path)
    accuracy = data["Loc Acc (selection: Test Loc Acc)"]
    assert accuracy["Test Loc Acc"] == ([0, 1, 2, 3], [5.0, 30.0, 30.0, 20.0])
    assert accuracy["Train Loc Acc"] == ([0, 1, 2, 3], [0.0, 10.0, 20.0, 30.0])
    assert data["chosen epoch"] == 1 and accuracy["chosen: epoch 1"] == ([1], [30.0])
    assert accuracy["Test Before Loc Acc"][1] == [12.5, 12.5] and accuracy["Train Before Loc Acc"][1] == [7.5, 7.5]
    assert data["Pol Loss"]["Test Pol Loss"] == ([0, 1, 2, 3], [1.0, 0.0, -1.0, -2.0])
    assert list(data["learning rates"]) == ["learning rate"]  # a frozen net's rate of 0 is not drawn on the log scale


def test_trajectory_gif_has_one_frame_per_step(tmp_path):
    from utils.plots import trajectory_gif

    steps = 4
    boxes = torch.tensor([[0.0, 0.0, 83.0, 83.0]]).repeat(3, steps + 1, 1)
    boxes[:, 1:, 2:] -= torch.arange(1, steps + 1, dtype=torch.float32)[None, :, None] * 10  # a box that shrinks each step
    path = trajectory_gif(np.zeros((3, 84, 84), np.uint8), boxes, torch.zeros(3, steps, dtype=torch.long), torch.tensor([[10, 10, 37, 37]] * 3),
                          str(tmp_path / "t.gif"), "title", columns=3)
    with Image.open(path) as image:
        assert image.format == "GIF" and image.n_frames == steps + 1
