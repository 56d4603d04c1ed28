"""Real photographs (CUB-200-2011, COCO 2017) as the successor's datasets (docs/method.md §11):
decoding and preprocessing, the box rule, and `RealImages`, a split of images with one target box each.

Preprocessing (every stage, train and test alike; no augmentation): decode with PIL and convert to
RGB; float32 H x W x 3 in [0, 255]; resize to S x S ignoring the aspect ratio, bilinear with
half-pixel centres and no antialiasing (OpenCV's default `cv2.resize`, which torch's
`interpolate(align_corners=False, antialias=False)` equals up to float rounding: tested); divide by
256 (not 255, faithful), then ImageNet mean / std per channel.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

from utils.errors import DataError

REAL_IMAGE_SIZE = 224  # S, the network input side
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PIXEL_SCALE = 256.0  # faithful: the original divides by 256


def decode(path):
    """The image at `path` as float32 (H, W, 3) RGB in [0, 255] (gray and CMYK converted); one-line
    DataError naming the path when it is missing or does not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.float32)
    except FileNotFoundError:
        raise DataError(f"image {path} is missing: restore the dataset's file (its archive holds it)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(f"image {path} does not decode ({error.__class__.__name__}: {error}); "
                        f"replace it with the dataset's original file") from None


def preprocess(pixels, size=REAL_IMAGE_SIZE):
    """float32 (H, W, 3) RGB in [0, 255] -> (3, size, size) float32 network input."""
    image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None]
    resized = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=False)[0]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (resized / PIXEL_SCALE - mean) / std


def input_boxes(xywh, widths, heights, size=REAL_IMAGE_SIZE):
    """Stored boxes (N, 4) `[x, y, w, h]` in original pixels -> (N, 4) float32 `[x1, y1, x2, y2]` in
    input pixels: `[x, y, x + w - 1, y + h - 1]` (the inclusive rule on float boxes, faithful: a
    continuous COCO box ends one pixel short), x-values times S / W and y-values times S / H (float,
    no rounding or clipping). A new tensor: the stored rows are never modified."""
    xywh = torch.as_tensor(np.asarray(xywh, dtype=np.float64))
    corners = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:] - 1], dim=1)
    scale_x = size / torch.as_tensor(np.asarray(widths, dtype=np.float64))
    scale_y = size / torch.as_tensor(np.asarray(heights, dtype=np.float64))
    scale = torch.stack([scale_x, scale_y, scale_x, scale_y], dim=1)
    return (corners * scale).to(torch.float32)


class RealImages(torch.utils.data.Dataset):
    """One list of photographs with one target box each.

    `dataset[rows]` (a 1-D index) -> (images (B, 3, S, S) float32 preprocessed, targets (B, 4) float32
    `[x1, y1, x2, y2]` input pixels); `targets` (N, 4) holds every box. `keys` names each image (its
    path relative to the dataset root), `ids` its id in the dataset's files, `groups` its class (or
    None). `in_memory`: decode and preprocess every image once, at construction (CUB); otherwise each
    access reads its images (COCO).
    """

    def __init__(self, name, root, keys, ids, xywh, sizes=None, groups=None, in_memory=False, size=REAL_IMAGE_SIZE):
        self.name, self.root, self.keys, self.ids, self.size = name, root, list(keys), list(ids), size
        self.groups = None if groups is None else list(groups)
        self.split, self.label = name, f"the list {name}"
        self.pixels = None
        if in_memory:
            decoded = [decode(self.path(i)) for i in range(len(self.keys))]
            sizes = [(image.shape[1], image.shape[0]) for image in decoded]
            self.pixels = torch.stack([preprocess(image, size) for image in decoded]) if decoded else torch.zeros(0, 3, size, size)
        self.sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)  # (N, [width, height]) original pixels
        self.xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
        self.targets = input_boxes(self.xywh, self.sizes[:, 0], self.sizes[:, 1], size)

    def path(self, row):
        return os.path.join(self.root, self.keys[row])

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, index):
        rows = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        if self.pixels is not None:
            images = self.pixels[rows]
        else:
            images = torch.stack([preprocess(decode(self.path(int(row))), self.size) for row in rows]) if len(rows) else \
                torch.zeros(0, 3, self.size, self.size)
        return images, self.targets[rows].clone()

    def fingerprint_parts(self):
        """What identifies the data a run reads (its data fingerprint): the images' names and boxes."""
        return ["\n".join(self.keys).encode(), self.targets.contiguous().numpy()]

    def record(self):
        """The list as written into a run folder: ids and names in order, with the count."""
        return {"name": self.name, "images": len(self), "ids": [int(i) for i in self.ids], "files": self.keys}


def describe_lists(source, train_set, test_set, target=False):
    """The line a real-image run prints about its lists (adaptation: `target`)."""
    if not target:
        return f"data: {source}: train {train_set.name} ({len(train_set)} images) / test {test_set.name} ({len(test_set)} images)"
    same = " (the same images: transductive)" if train_set is test_set else ""
    return (f"target: {source}: adaptation images {train_set.name} ({len(train_set)}) / test {test_set.name} "
            f"({len(test_set)}){same}")


def require_folder(path, what, flag):
    if not path:
        raise DataError(f"{flag} is needed: the folder that holds {what}")
    if not os.path.isdir(path):
        raise DataError(f"{flag} {path} is not a folder: pass the folder that holds {what}")


def require_file(path, what):
    if not os.path.isfile(path):
        raise DataError(f"{path} is missing: {what}")
