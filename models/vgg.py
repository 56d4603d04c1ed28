"""VGG16 RoI encoder of the successor method on real images: a frozen VGG16 conv5_3 base (stride 16),
RoIAlign/RoIPool at 1/16 to a p x p RoI feature and the projection head `RCNN_top` to the embedding,
as faster-rcnn.pytorch's vgg16 (no decoder). utils/successor/backbone.py fills the base."""

import torch.nn as nn
from torchvision.models.vgg import cfgs, make_layers

from models.encoder import RoIEmbedder

SPATIAL_SCALE = 1.0 / 16
FEATURE_CHANNELS = 512
# torchvision indices of the 13 convolutions of vgg16().features (ReLUs and max-pools in between)
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def vgg16_base():
    """torchvision's `vgg16(weights=None).features` without its last max-pool: 13 conv3x3 + ReLU and 4
    max-pools, (N, 3, S, S) -> conv5_3 after ReLU (N, 512, S/16, S/16); same layer indices and init."""
    base = make_layers(cfgs["D"], batch_norm=False)[:-1]  # a Sequential slice keeps the indices 0..29
    for module in base.modules():  # VGG.__init__'s init of its convolutions (without building the classifier)
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return base


class VGGRoIEncoder(RoIEmbedder):
    """Frozen VGG16 base (`RCNN_base`) and trainable projection head (`RCNN_top`, PyTorch default init).

    `features(images)` (N, 3, S, S) -> (N, 512, S/16, S/16); `roi_features(features, rois)` -> (K, 512, p, p);
    `project(roi_features)` -> (K, dim). rois: (K, 5) `[batch_index, x1, y1, x2, y2]` in pixels, or (N, 4)
    boxes, one per image. The images must be preprocessed as the loaded weights expect.
    """

    has_decoder = False
    feature_channels = FEATURE_CHANNELS
    spatial_scale = SPATIAL_SCALE

    def __init__(self, pooling_size=7, pooling_mode="align", dim=1024):
        super().__init__(pooling_size, pooling_mode, dim)
        self.RCNN_base = vgg16_base()
        self.RCNN_base.requires_grad_(False)  # never trained, in any stage
        self.RCNN_top = nn.Sequential(
            nn.Linear(FEATURE_CHANNELS * self.pooling_size**2, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(1024, self.dim),
        )

    def features(self, images):
        """(N, 3, S, S) -> (N, 512, S/16, S/16) conv5_3 map."""
        return self.RCNN_base(images)

    def forward(self, images, rois):
        """The embedding (K, dim) of RoIs of the images."""
        return self.embed(self.features(images), rois)
