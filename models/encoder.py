"""RoI encoder of the successor method (docs/method.md §10.5): a small conv encoder,
RoIAlign/RoIPool to a p x p RoI feature (the agent's state), a projection head to the embedding
(the ordinal loss and the reward) and a decoder that reconstructs the image from the encoder map."""

import torch
import torch.nn as nn

from models.net import POOLING_MODES, init_weights, pool_rois, set_rois

# 84x84 input -> 42x42 map (one stride-2 convolution)
SPATIAL_SCALE = 0.5
FEATURE_CHANNELS = 64


class RoIEmbedder(nn.Module):
    """What the successor's encoders share: pooling a p x p RoI feature from a backbone map (RoIAlign or
    RoIPool at `spatial_scale`) and projecting it with the head `RCNN_top` to the embedding. A subclass
    sets `spatial_scale` and `RCNN_top`, and implements `features`."""

    spatial_scale = SPATIAL_SCALE
    has_decoder = False

    def __init__(self, pooling_size, pooling_mode, dim):
        super().__init__()
        if pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {POOLING_MODES}, got {pooling_mode!r}")
        if int(pooling_size) < 1 or int(dim) < 1:
            raise ValueError(f"pooling_size and dim must be positive, got {pooling_size} and {dim}")
        self.pooling_size, self.pooling_mode, self.dim = int(pooling_size), pooling_mode, int(dim)

    def roi_features(self, features, rois):
        """RoIs (K, 5), or boxes (N, 4) one per image -> (K, C, p, p) pooled RoI features."""
        if features.dtype not in (torch.float32, torch.float64):  # bf16 under autocast: pool in float32
            features = features.float()
        return pool_rois(features, rois, self.pooling_size, self.spatial_scale, self.pooling_mode)

    def project(self, roi_features):
        """(K, C, p, p) -> (K, dim) embedding (dropout in train mode, independent per element)."""
        hidden = self.RCNN_top[1](self.RCNN_top[0](roi_features.flatten(1)))
        if self.training:  # Dropout is the identity in eval mode: skip the call
            hidden = self.RCNN_top[2](hidden)
        return self.RCNN_top[3](hidden)

    def embed(self, features, rois):
        """Embeds RoIs from a backbone map -> (K, dim)."""
        return self.project(self.roi_features(features, rois))

    def embed_sets(self, features, boxes):
        """Embeds R box sets of the N images in one head pass: boxes (R, N, 4) -> (R, N, dim)."""
        return self.embed(features, set_rois(boxes)).view(*boxes.shape[:2], -1)


class RoIEncoder(RoIEmbedder):
    """Encoder, projection head (`RCNN_top`) and decoder; key names as the successor's checkpoints.

    `features(images)` (N, 1, 84, 84) -> (N, 64, 42, 42); `roi_features(features, rois)` -> (K, 64, p, p);
    `project(roi_feature)` -> (K, dim); `decode(features)` -> (N, 1, 84, 84) in [0, 1].
    rois: (K, 5) `[batch_index, x1, y1, x2, y2]` in pixels, or (N, 4) boxes, one per image.
    """

    has_decoder = True

    def __init__(self, pooling_size=7, pooling_mode="align", dim=512):
        super().__init__(pooling_size, pooling_mode, dim)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(10, 32, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, FEATURE_CHANNELS, kernel_size=3, stride=1, padding=1),
        )
        self.RCNN_top = nn.Sequential(
            nn.Linear(FEATURE_CHANNELS * self.pooling_size**2, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(1024, self.dim),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(FEATURE_CHANNELS, 32, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(32, 10, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(10, 1, kernel_size=3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )
        init_weights(self)  # ConvTranspose2d (not a Conv2d) keeps torch's default

    def features(self, images):
        """(N, 1, 84, 84) -> (N, 64, 42, 42) encoder map."""
        return self.encoder(images)

    def decode(self, features):
        """(N, 64, 42, 42) -> (N, 1, 84, 84) reconstruction in [0, 1]."""
        return self.decoder(features)

    def forward(self, images, rois):
        """The pretraining forward: (reconstruction (N, 1, 84, 84), embedding (K, dim))."""
        features = self.features(images)
        return self.decode(features), self.embed(features, rois)
