"""The real-image lists at a glance (experiment RD): per list, its images, classes, the whole-image
window's CorLoc and the quartiles of the box side, printed as a table; `--out FILE` writes the same
figures as JSON `{list: {"images", "classes", "whole_image_corloc", "box_side_quartiles"}}`.

    python tools/real_data.py --dataset cub --cub_root CUB_200_2011 --out cub_lists.json
    python tools/real_data.py --dataset coco --coco_root coco --classes dog cat --out coco_lists.json

CUB: every list of --cub_lists (named by the JSON file's stem), `classes` = class folders. COCO: train2017
and val2017 of each class (`<split>2017_<class>`, the one-instance images), `classes` = 1. Boxes are in
224-pixel input coordinates (docs/method.md §11.1); the side of a box is sqrt((x2 - x1) (y2 - y1)), the
square root of the area the IoU rule uses; whole-image CorLoc is the % of boxes with IoU >= 0.5 against
the window [0, 0, 223, 223]. No image is decoded (CUB's sizes come from the JPEG headers).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from utils.data import coco, cub  # noqa: E402
from utils.data.real import REAL_IMAGE_SIZE, input_boxes  # noqa: E402
from utils.errors import DataError, UserError  # noqa: E402
from utils.localization.rollout import corloc, whole_image_boxes  # noqa: E402
from utils.localization.boxes import box_iou_pairs  # noqa: E402


def image_size(path):
    """(width, height) from the image's header; one-line DataError naming the file when it does not open."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise DataError(f"image {path} is missing: restore the dataset's file (its archive holds it)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(f"image {path} does not decode ({error.__class__.__name__}: {error}); "
                        f"replace it with the dataset's original file") from None


def figures(targets, classes):
    """The figures of one list from its (N, 4) input-pixel boxes."""
    targets = torch.as_tensor(targets, dtype=torch.float32)
    ious = box_iou_pairs(whole_image_boxes(len(targets), "cpu", REAL_IMAGE_SIZE), targets)
    sides = torch.sqrt((targets[:, 2] - targets[:, 0]) * (targets[:, 3] - targets[:, 1])).double().numpy()
    quartiles = [float(q) for q in np.quantile(sides, [0.25, 0.5, 0.75])] if len(sides) else [float("nan")] * 3
    return {"images": int(len(targets)), "classes": int(classes), "whole_image_corloc": corloc(ious), "box_side_quartiles": quartiles}


def cub_figures(root, lists_dir):
    names = sorted(f[:-5] for f in os.listdir(lists_dir) if f.endswith(".json")) if os.path.isdir(lists_dir) else []
    if not names:
        raise DataError(f"no CUB group lists (*.json) in {lists_dir}: pass --cub_lists the folder that holds them")
    result = {}
    for name in names:
        keys, _, xywh, _ = cub.cub_list(root, name, lists_dir, decode=False)
        sizes = np.asarray([image_size(os.path.join(root, key)) for key in keys], dtype=np.float64).reshape(-1, 2)
        targets = input_boxes(np.asarray(xywh).reshape(-1, 4), sizes[:, 0], sizes[:, 1])
        result[name] = figures(targets, cub.class_count(keys))
    return result


def coco_figures(root, classes):
    result = {}
    for name in classes:
        for split in coco.SPLITS:
            dataset = coco.coco_list(root, split, name)
            result[dataset.name] = figures(dataset.targets, 1)
            counts = dataset.counts  # printed, not in the JSON (its keys are the interface)
            print(f"{dataset.name}: {counts['with_class']} images with {name}, {counts['single']} with exactly one "
                  f"({counts['single_crowd']} of them a crowd annotation), {counts['multi']} with several")
    return result


def table(result):
    lines = ["| list | images | classes | whole-image CorLoc (%) | box side q1 / median / q3 (px) |", "|---|---|---|---|---|"]
    for name, row in result.items():
        q = row["box_side_quartiles"]
        lines.append(f"| {name} | {row['images']} | {row['classes']} | {row['whole_image_corloc']:.1f} | "
                     f"{q[0]:.1f} / {q[1]:.1f} / {q[2]:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=["cub", "coco"])
    parser.add_argument("--cub_root", default="", help="the CUB_200_2011 folder of the official archive")
    parser.add_argument("--cub_lists", default=cub.CUB_LISTS, help="the folder of the CUB group lists (default: the shipped ones)")
    parser.add_argument("--coco_root", default="", help="the COCO 2017 folder (annotations/, train2017/, val2017/)")
    parser.add_argument("--classes", nargs="+", default=["dog", "cat"], help="COCO classes (default: dog cat)")
    parser.add_argument("--out", default="", help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    try:
        if args.dataset == "cub":
            result = cub_figures(args.cub_root, args.cub_lists)
        else:
            result = coco_figures(args.coco_root, args.classes)
    except UserError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    print(table(result))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as stream:
            json.dump(result, stream, indent=1)
        print(f"figures -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
