"""The VGG16 base's weights of a real-image run (`--backbone_weights`): a state dict file with torchvision
key names, torchvision's ImageNet weights (a labelled variant) or the seeded random init (tests only)."""

import os

import torch
from torchvision.models.vgg import VGG16_Weights

from utils.errors import CheckpointError
from utils.run.files import file_sha256

WEIGHTS_HELP = ("pass --backbone_weights PATH to a VGG16 state dict with torchvision key names (features.N.weight), "
                "e.g. the Caffe-converted vgg16_caffe.pth that faster-rcnn.pytorch distributes, "
                "or --backbone_weights imagenet for torchvision's IMAGENET1K_V1")
IMAGENET_VARIANT = "torchvision IMAGENET1K_V1 (a labelled variant: the authors used Caffe VGG16 weights)"
RANDOM_WARNING = "RANDOM VGG16 WEIGHTS: for tests only, the figures mean nothing"


def _fill_base(encoder, state, source):
    """Copies `features.N.weight|bias` of a torchvision-named state dict into `encoder.RCNN_base`."""
    if isinstance(state, dict) and not any(key.startswith("features.") for key in state if isinstance(key, str)):
        state = state.get("state_dict", state.get("model", state))  # a wrapped state dict
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} does not hold a state dict ({type(state).__name__}); {WEIGHTS_HELP}")
    wanted = {key: f"features.{key}" for key in encoder.RCNN_base.state_dict()}
    for key, name in wanted.items():
        value, shape = state.get(name), encoder.RCNN_base.state_dict()[key].shape
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source} lacks VGG16 key {name}; {WEIGHTS_HELP}")
        if value.shape != shape:
            raise CheckpointError(f"{source}: {name} has shape {tuple(value.shape)}, VGG16 needs {tuple(shape)}; {WEIGHTS_HELP}")
    encoder.RCNN_base.load_state_dict({key: state[name] for key, name in wanted.items()})  # keeps requires_grad False


def _reason(error):
    """An exception as a short single line: the weights-only unpickler's own reason, not its boilerplate."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    text = " ".join(text.split())
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def load_backbone_weights(encoder, spec, download=True):
    """Fills `encoder.RCNN_base` as `spec` says and returns a record of what was loaded:

    a file path (a VGG16 state dict with torchvision key names `features.N.weight|bias`, other keys
    ignored, possibly wrapped under "state_dict" or "model") -> {"backbone_weights": "file", "path", "sha256"};
    "imagenet" (torchvision's VGG16_Weights.IMAGENET1K_V1, downloaded unless cached; `download=False`: the
    cache only) -> {"backbone_weights": "imagenet", "variant"}; "random" (the module's seeded init)
    -> {"backbone_weights": "random", "warning"}. Raises CheckpointError (one line) for a missing,
    unloadable or unfitting file, or ImageNet weights that cannot be had.
    """
    if spec == "random":
        return {"backbone_weights": "random", "warning": RANDOM_WARNING}
    if spec == "imagenet":
        weights = VGG16_Weights.IMAGENET1K_V1
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
        if not download and not os.path.isfile(cached):
            raise CheckpointError(f"torchvision's VGG16 IMAGENET1K_V1 weights are not cached at {cached} and downloading is off; "
                                  f"use a local file instead: {WEIGHTS_HELP}")
        try:
            state = weights.get_state_dict(progress=False)
        except Exception as error:  # no network, a proxy, a corrupt download: all end the same way
            raise CheckpointError(f"downloading torchvision's VGG16 IMAGENET1K_V1 weights from {weights.url} failed "
                                  f"({_reason(error)}); use a local file instead: {WEIGHTS_HELP}") from None
        _fill_base(encoder, state, f"torchvision's IMAGENET1K_V1 ({weights.url})")
        return {"backbone_weights": "imagenet", "variant": IMAGENET_VARIANT}
    path = os.path.abspath(os.fspath(spec))
    if not os.path.isfile(path):
        raise CheckpointError(f"backbone weights file {path} does not exist; {WEIGHTS_HELP}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, a truncated one, pickled objects beyond tensors
        raise CheckpointError(f"backbone weights file {path} cannot be loaded by torch.load "
                              f"with weights_only=True ({_reason(error)}); {WEIGHTS_HELP}") from None
    _fill_base(encoder, state, f"backbone weights file {path}")
    return {"backbone_weights": "file", "path": path, "sha256": file_sha256(path)}
