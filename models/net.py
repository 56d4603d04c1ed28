"""RoI embedding net (docs/method.md §3): a small conv backbone, RoIAlign/RoIPool, an MLP head to 512-d."""

import torch
import torch.nn as nn
from torchvision.ops import roi_pool

from models.parallel_roi_align import parallel_roi_align

# 84x84 input -> 15x15 feature map, so one feature cell spans 84 / 15 = 5.6 pixels.
SPATIAL_SCALE = 1.0 / 5.6
EMBED_DIM = 512
FEATURE_CHANNELS = 128  # channels of the backbone map (RCNN_base's last convolution)
POOLING_MODES = ("align", "pool")


class Net(nn.Module):
    """Embeds boxes of images.

    `net(images, rois)` runs the backbone and embeds the RoIs; `net.features(images)` runs the
    backbone once and `net.embed(features, rois)` embeds any number of RoI sets from it.
    images: (N, 1, 84, 84) float, normalised; rois: (K, 5) `[batch_index, x1, y1, x2, y2]` in
    pixels, or (N, 4) boxes, one per image. Output: (K, 512) float.
    """

    def __init__(self, pooling_size=5, pooling_mode="align"):
        super().__init__()
        if pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {POOLING_MODES}, got {pooling_mode!r}")
        if int(pooling_size) < 1:
            raise ValueError(f"pooling_size must be positive, got {pooling_size}")
        self.pooling_size = int(pooling_size)
        self.pooling_mode = pooling_mode
        # faithful: no activation between the convolutions; key names RCNN_base.{0..3}
        self.RCNN_base = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=5, stride=2),
            nn.Conv2d(10, 32, kernel_size=3, stride=2),
            nn.Conv2d(32, 64, kernel_size=3, stride=1),
            nn.Conv2d(64, FEATURE_CHANNELS, kernel_size=3, stride=1),
        )
        self.RCNN_top = nn.Sequential(
            nn.Linear(FEATURE_CHANNELS * self.pooling_size**2, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(1024, EMBED_DIM),
        )
        init_weights(self)

    def features(self, images):
        """(N, 1, 84, 84) -> (N, 128, 15, 15) backbone feature map."""
        return self.RCNN_base(images)

    def embed(self, features, rois):
        """Embeds RoIs (K, 5), or boxes (N, 4) one per image, from a feature map -> (K, 512)."""
        pooled = pool_rois(features, rois, self.pooling_size, SPATIAL_SCALE, self.pooling_mode)
        hidden = self.RCNN_top[1](self.RCNN_top[0](pooled.flatten(1)))
        if self.training:  # Dropout is the identity in eval mode: skip the call
            hidden = self.RCNN_top[2](hidden)
        return self.RCNN_top[3](hidden)

    def embed_sets(self, features, boxes):
        """Embeds R box sets of the N images in one head pass: boxes (R, N, 4) -> (R, N, 512)."""
        return self.embed(features, set_rois(boxes)).view(*boxes.shape[:2], -1)

    def forward(self, images, rois):
        return self.embed(self.features(images), rois)


def init_weights(model):
    """Conv2d Kaiming-normal (fan_out, relu), Linear N(0, 0.01), their biases 0; other modules keep
    torch's defaults (the initialisation of both papers' nets)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


def pool_rois(features, rois, size, spatial_scale, mode):
    """RoIAlign (sampling ratio 2, aligned=False) or RoIPool of RoIs (K, 5), or boxes (N, 4) one per
    image, to size x size -> (K, C, size, size). Coordinates in float32 even under bf16 autocast
    (torchvision's autocast runs RoIAlign in float32), float64 with float64 features. RoIAlign runs
    over all the CPU's threads (models/parallel_roi_align.py: torchvision's values, bit for bit)."""
    rois = as_rois(rois)
    wanted = torch.float64 if features.dtype == torch.float64 else torch.float32
    if rois.dtype != wanted:
        rois = rois.to(wanted)
    if mode == "align":
        return parallel_roi_align(features, rois, (size, size), spatial_scale, sampling_ratio=2, aligned=False)
    return roi_pool(features, rois, (size, size), spatial_scale)


def as_rois(boxes):
    """(N, 4) boxes, one per image, -> (N, 5) RoIs `[i, x1, y1, x2, y2]`; (K, 5) RoIs pass through."""
    if boxes.dim() != 2 or boxes.shape[1] not in (4, 5):
        raise ValueError(f"expected (N, 4) boxes or (K, 5) RoIs, got shape {tuple(boxes.shape)}")
    if boxes.shape[1] == 5:
        return boxes
    index = torch.arange(boxes.shape[0], device=boxes.device, dtype=boxes.dtype)
    return torch.cat([index[:, None], boxes], dim=1)


def set_rois(boxes):
    """R box sets of the same N images (R, N, 4) -> (R * N, 5) RoIs, set after set."""
    sets, n, _ = boxes.shape
    index = torch.arange(n, device=boxes.device, dtype=boxes.dtype).view(1, n, 1).expand(sets, n, 1)
    return torch.cat([index, boxes], dim=2).view(sets * n, 5)


def stack_rois(*box_sets):
    """Several (N, 4) box sets of the same N images -> one (len*N, 5) RoI tensor, set after set.

    Embedding them with one `Net.embed` call and `.split(N)` gives each set's embeddings.
    """
    return torch.cat([as_rois(boxes) for boxes in box_sets], dim=0)
