"""models/parallel_roi_align.py: RoIAlign over the CPU's threads gives torchvision's values and
gradients bit for bit."""

import pytest
import torch
from torchvision.ops import roi_align

import models.parallel_roi_align as parallel
from models.parallel_roi_align import chunk_count, parallel_roi_align


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def random_rois(count, images, generator):
    corners = torch.rand(count, 2, generator=generator) * 60
    sides = 5 + torch.rand(count, 2, generator=generator) * 40
    index = torch.randint(images, (count, 1), generator=generator).float()
    return torch.cat([index, corners, corners + sides], dim=1)


@pytest.mark.parametrize("channels, side, scale, count", [(64, 42, 0.5, 301), (128, 15, 1 / 5.6, 200), (8, 10, 0.25, 64)])
def test_the_values_are_torchvisions(two_threads, channels, side, scale, count):
    generator = torch.Generator().manual_seed(count)
    features = torch.randn(12, channels, side, side, generator=generator)
    rois = random_rois(count, 12, generator)
    assert chunk_count(features, rois) == 2  # the threaded path, with a RoI count that does not split evenly
    expected = roi_align(features, rois, (7, 7), scale, sampling_ratio=2, aligned=False)
    assert torch.equal(parallel_roi_align(features, rois, (7, 7), scale, 2, False), expected)


def test_the_gradient_is_torchvisions(two_threads):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(6, 16, 15, 15, generator=generator, dtype=torch.float64)
    rois = random_rois(130, 6, generator).double()
    weights = torch.randn(130, 16, 5, 5, generator=generator, dtype=torch.float64)
    grads = []
    for pool in (lambda f: roi_align(f, rois, (5, 5), 1 / 5.6, sampling_ratio=2, aligned=False),
                 lambda f: parallel_roi_align(f, rois, (5, 5), 1 / 5.6, 2, False)):
        leaf = features.clone().requires_grad_(True)
        (pool(leaf) * weights).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])


def test_torchvisions_call_serves_where_threads_cannot_help(two_threads, monkeypatch):
    features, rois = torch.randn(2, 4, 8, 8), random_rois(200, 2, torch.Generator().manual_seed(1))
    assert chunk_count(features, rois[:40]) == 1  # too few RoIs per thread
    assert chunk_count(features.bfloat16(), rois) == 1  # reduced precision: torchvision's own casts
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert chunk_count(features, rois) == 1  # autocast is per thread
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert chunk_count(features, rois) == 1
    calls = []
    monkeypatch.setattr(parallel, "roi_align", lambda *a, **k: calls.append(1) or roi_align(*a, **k))
    parallel_roi_align(features, rois, (3, 3), 1.0, 2, False)
    assert calls == [1]
