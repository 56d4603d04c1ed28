"""models/vgg.py: the frozen VGG16 base and trainable head of the real-image RoI encoder, its shapes and
parameter counts, and utils/successor/backbone.py `load_backbone_weights` (a torchvision-named file, ImageNet, random) with its errors."""

import hashlib
import os
import urllib.error

import pytest
import torch
import torchvision

from models import VGGRoIEncoder
from models.vgg import CONV_INDICES
from utils.successor.backbone import load_backbone_weights
from utils.errors import CheckpointError, UserError


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return VGGRoIEncoder().eval()


@pytest.fixture(scope="module")
def vgg_features_file(tmp_path_factory):
    """A seeded torchvision vgg16's `features.*` (plus one classifier key, to be ignored) saved to a file."""
    torch.manual_seed(1)
    vgg = torchvision.models.vgg16(weights=None)
    state = {key: value for key, value in vgg.state_dict().items() if key.startswith("features.")}
    state["classifier.6.bias"] = vgg.classifier[6].bias.detach().clone()
    path = tmp_path_factory.mktemp("weights") / "vgg16_test.pth"
    torch.save(state, path)
    return path, state, str(vgg.features[:-1])


def test_keys_counts_and_frozen_base(encoder):
    assert [key for key in encoder.state_dict() if key.startswith("RCNN_base.")] == [
        f"RCNN_base.{i}.{kind}" for i in CONV_INDICES for kind in ("weight", "bias")]
    assert sum(p.numel() for p in encoder.RCNN_base.parameters()) == 14_714_688
    assert sum(p.numel() for p in encoder.RCNN_top.parameters()) == 26_740_736
    assert {name for name, p in encoder.named_parameters() if p.requires_grad} == {
        f"RCNN_top.{i}.{kind}" for i in (0, 3) for kind in ("weight", "bias")}
    assert encoder.has_decoder is False and encoder.feature_channels == 512 and encoder.spatial_scale == 1 / 16
    assert (encoder.pooling_size, encoder.pooling_mode, encoder.dim) == (7, "align", 1024)


def test_base_is_torchvision_vgg16_features_without_last_pool(encoder, vgg_features_file):
    assert str(encoder.RCNN_base) == vgg_features_file[2]


def test_map_shape_at_224(encoder):
    with torch.no_grad():
        features = encoder.features(torch.rand(1, 3, 224, 224))
    assert features.shape == (1, 512, 14, 14) and (features >= 0).all()  # conv5_3 after its ReLU


def test_embedding_shapes_and_pooling(encoder):
    features = torch.rand(2, 512, 14, 14)
    boxes = torch.tensor([[0.0, 0.0, 223.0, 223.0], [16.0, 32.0, 111.5, 150.0]])
    assert encoder.roi_features(features, boxes).shape == (2, 512, 7, 7)
    embedding = encoder.embed(features, boxes)
    assert embedding.shape == (2, 1024)
    sets = encoder.embed_sets(features, torch.stack([boxes, boxes.flip(0)]))
    assert sets.shape == (2, 2, 1024) and torch.allclose(sets[0], embedding, atol=1e-6)
    # a bf16 map is pooled in float32
    assert encoder.roi_features(features.bfloat16(), boxes).dtype == torch.float32
    pooled = VGGRoIEncoder(pooling_size=5, pooling_mode="pool", dim=16).eval()
    assert pooled.embed(features, boxes).shape == (2, 16)
    with pytest.raises(ValueError):
        VGGRoIEncoder(pooling_mode="nearest")


def test_forward_trains_the_head_only():
    torch.manual_seed(0)
    encoder = VGGRoIEncoder(dim=8).train()
    images = torch.rand(1, 3, 64, 64)
    rois = torch.tensor([[0.0, 0.0, 0.0, 63.0, 63.0], [0.0, 8.0, 8.0, 40.0, 30.0]])
    embedding = encoder(images, rois)
    assert embedding.shape == (2, 8)
    embedding.sum().backward()
    assert all(p.grad is None for p in encoder.RCNN_base.parameters())
    assert all(p.grad is not None for p in encoder.RCNN_top.parameters())


def test_file_round_trip(vgg_features_file):
    path, state, _ = vgg_features_file
    encoder = VGGRoIEncoder(dim=8)
    record = load_backbone_weights(encoder, str(path))
    assert record == {"backbone_weights": "file", "path": os.path.abspath(path),
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    for key, value in encoder.RCNN_base.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"])
    assert not any(p.requires_grad for p in encoder.RCNN_base.parameters())
    # a state dict wrapped under "state_dict" loads the same
    wrapped = path.parent / "wrapped.pth"
    torch.save({"state_dict": state}, wrapped)
    other = VGGRoIEncoder(dim=8)
    assert load_backbone_weights(other, wrapped)["backbone_weights"] == "file"
    assert torch.equal(other.RCNN_base[28].weight, state["features.28.weight"])


def expect_error(encoder, spec, *patterns):
    with pytest.raises(CheckpointError) as error:
        load_backbone_weights(encoder, spec)
    message = str(error.value)
    assert isinstance(error.value, UserError) and "\n" not in message
    assert "--backbone_weights PATH" in message and "vgg16_caffe.pth" in message
    for pattern in patterns:
        assert pattern in message, message


def test_file_errors(tmp_path, vgg_features_file):
    _, state, _ = vgg_features_file
    encoder = VGGRoIEncoder(dim=8)
    before = encoder.RCNN_base[0].weight.clone()
    expect_error(encoder, tmp_path / "absent.pth", "absent.pth", "does not exist")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file\n" * 10)
    expect_error(encoder, garbage, "garbage.pth", "cannot be loaded", "Unsupported operand")
    lacking = tmp_path / "lacking.pth"
    torch.save({key: value for key, value in state.items() if key != "features.28.bias"}, lacking)
    expect_error(encoder, lacking, "lacking.pth", "features.28.bias")
    misshapen = tmp_path / "misshapen.pth"
    torch.save({**state, "features.5.weight": torch.zeros(128, 64, 1, 1)}, misshapen)
    expect_error(encoder, misshapen, "misshapen.pth", "features.5.weight", "(128, 64, 1, 1)")
    not_a_dict = tmp_path / "list.pth"
    torch.save([1, 2], not_a_dict)
    expect_error(encoder, not_a_dict, "list.pth", "state dict")
    assert torch.equal(encoder.RCNN_base[0].weight, before)  # nothing loaded by a failed call


def test_imagenet_download_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    encoder = VGGRoIEncoder(dim=8)
    expect_error(encoder, "imagenet", "IMAGENET1K_V1", "download", "failed", "name resolution", "use a local file")
    with pytest.raises(CheckpointError, match="not cached .* downloading is off"):
        load_backbone_weights(encoder, "imagenet", download=False)


def test_random_record(encoder):
    before = encoder.RCNN_base[0].weight.clone()
    assert load_backbone_weights(encoder, "random") == {
        "backbone_weights": "random", "warning": "RANDOM VGG16 WEIGHTS: for tests only, the figures mean nothing"}
    assert torch.equal(encoder.RCNN_base[0].weight, before)
