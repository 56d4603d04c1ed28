"""COCO 2017 from its official files (docs/method.md §11.1): for one class, the images of a split
with exactly one annotation of that class, built from `annotations/instances_<split>2017.json` of
`--coco_root` (plain json; images in `<split>2017/`).

Selection for class c: an image counts when exactly one of its annotations has category c, crowd
annotations included (other categories do not matter); that annotation is its target. Ids are sorted
ascending (the original wrote them in Python-set order and shipped none). Images are read per access.
"""

import functools
import json
import os

from utils.data.real import REAL_IMAGE_SIZE, RealImages, describe_lists, require_file, require_folder
from utils.errors import DataError

SPLITS = ("train", "val")
COCO_HINT = "pass --coco_root the COCO 2017 folder (annotations/instances_{train,val}2017.json, train2017/, val2017/)"


def annotation_path(root, split):
    return os.path.join(root, "annotations", f"instances_{split}2017.json")


@functools.lru_cache(maxsize=2)
def read_annotations(root, split):
    """The annotation JSON of a split -> (images {id: (file name, width, height)}, annotations [(image id,
    category id, bbox, iscrowd)], categories {name: id}); only these fields are kept (the file's
    segmentations take gigabytes as Python objects)."""
    require_folder(root, "COCO 2017 (annotations/, train2017/, val2017/)", "--coco_root")
    path = annotation_path(root, split)
    require_file(path, COCO_HINT)
    print(f"reading {path} (train2017's takes about half a minute)", flush=True)
    try:
        with open(path) as stream:
            data = json.load(stream)
        images = {image["id"]: (image["file_name"], image["width"], image["height"]) for image in data["images"]}
        categories = {category["name"]: category["id"] for category in data["categories"]}
        annotations = [(a["image_id"], a["category_id"], [float(v) for v in a["bbox"]], int(a.get("iscrowd", 0)))
                       for a in data["annotations"]]
        del data
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path} is not a COCO instances file ({error.__class__.__name__}: {error}); {COCO_HINT}") from None
    return images, annotations, categories


def category_id(root, split, name):
    _, _, categories = read_annotations(root, split)
    if name not in categories:
        raise DataError(f"COCO has no class {name!r} (in {annotation_path(root, split)}); use one of its 80 names, "
                        f"e.g. {', '.join(sorted(categories)[:6])}, ...")
    return categories[name]


def select(root, split, name):
    """The images of `split` with exactly one annotation of class `name` -> (sorted image ids, their
    target annotations (image id, category id, bbox, iscrowd), counts {"with_class", "single",
    "single_crowd", "multi"})."""
    images, annotations, _ = read_annotations(root, split)
    wanted = category_id(root, split, name)
    per_image = {}
    for annotation in annotations:
        if annotation[1] == wanted:
            per_image.setdefault(annotation[0], []).append(annotation)
    chosen = sorted(image_id for image_id, found in per_image.items() if len(found) == 1)
    for image_id in chosen:
        if image_id not in images:
            raise DataError(f"{annotation_path(root, split)}: an annotation names image id {image_id}, which its images lack")
    targets = [per_image[image_id][0] for image_id in chosen]
    counts = {"with_class": len(per_image), "single": len(chosen), "single_crowd": sum(t[3] for t in targets),
              "multi": len(per_image) - len(chosen)}
    return chosen, targets, counts


def coco_list(root, split, name, size=REAL_IMAGE_SIZE):
    """The one-instance images of class `name` in `split` as RealImages (named `<split>2017_<name>`;
    `counts` as `select`). Image sizes come from the annotation file (no image is opened here); a
    missing image file is a one-line DataError before any work."""
    images, _, _ = read_annotations(root, split)
    chosen, targets, counts = select(root, split, name)
    keys = [os.path.join(f"{split}2017", images[image_id][0]) for image_id in chosen]
    for key in keys:
        if not os.path.isfile(os.path.join(root, key)):
            raise DataError(f"image {os.path.join(root, key)} is missing ({annotation_path(root, split)} lists it): {COCO_HINT}")
    sizes = [images[image_id][1:] for image_id in chosen]
    dataset = RealImages(f"{split}2017_{name}", root, keys, chosen, [t[2] for t in targets], sizes=sizes, size=size)
    dataset.counts = counts
    return dataset


# the successor's splits (utils/data/registry.py)
IMAGE_SIZE, CHANNELS, BACKBONE = REAL_IMAGE_SIZE, 3, "vgg16"
FLAGS = ("coco_root", "sel_cls", "backbone_weights")


def check_args(args):
    if not args.sel_cls:
        return "--sel_cls is needed with --dataset coco: the one COCO class of this stage (e.g. dog; adaptation: the target, e.g. cat)"
    if not args.coco_root:
        return "--coco_root is needed with --dataset coco: the COCO 2017 folder (annotations/, train2017/, val2017/)"
    return None


def source_splits(args):
    """(train, test) of pretraining and agent training: train2017 and val2017 of --sel_cls."""
    return coco_list(args.coco_root, "train", args.sel_cls, args.img_size), coco_list(args.coco_root, "val", args.sel_cls, args.img_size)


def target_splits(args):
    """(adaptation images, test images): train2017 of the target --sel_cls (support and adaptation), val2017 (test)."""
    return source_splits(args)


def describe(args, train_set, test_set, target=False):
    """The line a run prints about its data (adaptation: `target`)."""
    return describe_lists(f"COCO 2017 at {args.coco_root}", train_set, test_set, target)
