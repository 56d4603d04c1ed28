"""models/encoder.py: RoIEncoder, the successor's encoder (docs/method.md §10)."""

import torch

from models import RoIEncoder


def test_encoder_matches_published_layout():
    encoder = RoIEncoder()
    assert sum(p.numel() for p in encoder.parameters()) == 3_780_041
    keys = {k.rsplit(".", 1)[0] for k in encoder.state_dict()}
    assert keys == {"encoder.0", "encoder.2", "encoder.4", "decoder.0", "decoder.2", "decoder.4", "RCNN_top.0", "RCNN_top.3"}
    images = torch.randn(3, 1, 84, 84)
    features = encoder.features(images)
    assert features.shape == (3, 64, 42, 42)
    reconstruction, embedding = encoder(images, torch.tensor([[0.0, 0, 83, 83], [10, 10, 40, 40], [5, 6, 50, 60]]))
    assert reconstruction.shape == (3, 1, 84, 84) and embedding.shape == (3, 512)
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    roi = encoder.roi_features(features, torch.tensor([[1.0, 10, 10, 40, 40]]))
    assert roi.shape == (1, 64, 7, 7)
    encoder.eval()
    assert torch.allclose(encoder.project(roi), encoder.embed(features, torch.tensor([[1.0, 10, 10, 40, 40]])))
    # an original checkpoint (same keys) loads strictly
    RoIEncoder().load_state_dict(encoder.state_dict(), strict=True)
