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
