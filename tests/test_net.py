"""models/net.py: Net, the embedding network (RoI pooling on a shared feature map)."""

import pytest
import torch
from torchvision.ops import roi_align, roi_pool

from models import Net
from models.net import SPATIAL_SCALE, stack_rois

EXPECTED_KEYS = [
    "RCNN_base.0.weight", "RCNN_base.0.bias", "RCNN_base.1.weight", "RCNN_base.1.bias",
    "RCNN_base.2.weight", "RCNN_base.2.bias", "RCNN_base.3.weight", "RCNN_base.3.bias",
    "RCNN_top.0.weight", "RCNN_top.0.bias", "RCNN_top.3.weight", "RCNN_top.3.bias",
]


def test_parameter_count_and_keys():
    net = Net(pooling_size=5, pooling_mode="align")
    assert sum(p.numel() for p in net.parameters()) == 3_898_148
    assert list(net.state_dict().keys()) == EXPECTED_KEYS


def test_feature_map_and_output_shape():
    net = Net(pooling_size=5).eval()
    images = torch.randn(3, 1, 84, 84)
    assert net.features(images).shape == (3, 128, 15, 15)
    rois = torch.tensor([[0, 0, 0, 83, 83], [2, 10, 10, 37, 37], [2, 5, 40, 60, 83.0]])
    assert net(images, rois).shape == (3, 512)
    assert net(images, torch.tensor([[0, 0, 83, 83.0]] * 3)).shape == (3, 512)


def test_init_statistics():
    torch.manual_seed(0)
    net = Net(pooling_size=5)
    for layer in net.RCNN_base:
        fan_out = layer.out_channels * layer.kernel_size[0] * layer.kernel_size[1]
        assert abs(layer.weight.std().item() - (2.0 / fan_out) ** 0.5) < 0.25 * (2.0 / fan_out) ** 0.5
        assert torch.all(layer.bias == 0)
    for index in (0, 3):
        assert abs(net.RCNN_top[index].weight.std().item() - 0.01) < 0.001
        assert torch.all(net.RCNN_top[index].bias == 0)


def test_pooling_modes_match_torchvision():
    torch.manual_seed(0)
    images = torch.randn(2, 1, 84, 84)
    rois = torch.tensor([[0, 3, 4, 50, 60], [1, 20, 20, 47, 47.0]])
    for mode, op in (("align", lambda f: roi_align(f, rois, (5, 5), SPATIAL_SCALE, 2, False)), ("pool", lambda f: roi_pool(f, rois, (5, 5), SPATIAL_SCALE))):
        net = Net(pooling_size=5, pooling_mode=mode).eval()
        features = net.features(images)
        expected = net.RCNN_top(op(features).flatten(1))
        assert torch.allclose(net(images, rois), expected)
    align, pool = Net(5, "align").eval(), Net(5, "pool").eval()
    pool.load_state_dict(align.state_dict())
    assert not torch.allclose(align(images, rois), pool(images, rois))


def test_cached_features_equal_full_forward():
    torch.manual_seed(0)
    net = Net(pooling_size=5).eval()
    images = torch.randn(4, 1, 84, 84)
    gt = torch.tensor([[0, 0, 27, 27], [10, 10, 37, 37], [56, 56, 83, 83], [20, 30, 47, 57.0]])
    other = torch.tensor([[0, 0, 83, 83.0]] * 4)
    features = net.features(images)
    together = net.embed(features, stack_rois(gt, other))
    assert torch.allclose(together[:4], net(images, gt), atol=1e-6)
    assert torch.allclose(together[4:], net(images, other), atol=1e-6)


def test_one_pass_gradients_equal_separate_passes():
    torch.manual_seed(0)
    net = Net(pooling_size=3).eval()
    images = torch.randn(2, 1, 84, 84)
    a, b = torch.tensor([[0, 0, 27, 27], [5, 5, 60, 60.0]]), torch.tensor([[0, 0, 83, 83], [30, 30, 57, 57.0]])
    net.zero_grad()
    (net(images, a).sum() + 2 * net(images, b).sum()).backward()
    separate = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    ea, eb = net.embed(net.features(images), stack_rois(a, b)).split(2)
    (ea.sum() + 2 * eb.sum()).backward()
    for g1, p in zip(separate, net.parameters()):
        assert torch.allclose(g1, p.grad, rtol=1e-3, atol=1e-5 * g1.abs().max().item())


def test_original_checkpoint_loads_strictly(tmp_path):
    """A checkpoint in the original's format (`epoch`, `state_dict`, `acc`) loads unchanged."""
    source = Net(pooling_size=5)
    state_dict = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / "best.pth.tar"
    torch.save({"epoch": 3, "state_dict": state_dict, "acc": 71.5}, path)
    target = Net(pooling_size=5)
    checkpoint = torch.load(path, weights_only=True)
    target.load_state_dict(checkpoint["state_dict"], strict=True)
    images = torch.randn(1, 1, 84, 84)
    rois = torch.tensor([[0, 0, 0, 83, 83.0]])
    assert torch.equal(source.eval()(images, rois), target.eval()(images, rois))


def test_bad_pooling_mode():
    with pytest.raises(ValueError):
        Net(pooling_mode="max")
