"""CUB-200-2011 from its official archive (docs/method.md §11.1): the group lists of `lists/cub_splits/`
resolved through `images.txt` and `bounding_boxes.txt` of `--cub_root`.

A list is one JSON object (`label_names`, `image_names`, `image_labels`); an image name is resolved
by its part after the last `images/`, looked up in images.txt for the image id, whose row of
bounding_boxes.txt (`<id> <x> <y> <width> <height>`, original pixels) is the target. The official
train/test split plays no part. Images are decoded once and kept in memory.
"""

import functools
import json
import os

from utils.data.real import REAL_IMAGE_SIZE, RealImages, describe_lists, require_file, require_folder
from utils.errors import DataError

CUB_LISTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lists", "cub_splits")
SOURCE_LIST = "warbler_train15"  # source training list of pretraining and agent training
# --bg_name -> the test / target list
TARGET_LISTS = {"warbler": "warbler_val5", "wren": "wren_193_197", "gull": "gull_59_64", "oriole": "oriole_95_98",
                "sparrow": "sparrow_114_119", "vireo": "vireo_151_157", "kingfisher": "kingfisher_79_83"}
ARCHIVE_HINT = "pass --cub_root the CUB_200_2011 folder of the official archive (images/, images.txt, bounding_boxes.txt)"


def read_rows(path, columns):
    """Whitespace-separated rows of `columns` fields -> list of field lists; one-line DataError on a bad line."""
    require_file(path, ARCHIVE_HINT)
    rows = []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != columns:
                raise DataError(f"{path} line {number}: expected {columns} fields, got {len(fields)} ({line.strip()!r}); {ARCHIVE_HINT}")
            rows.append(fields)
    return rows


@functools.lru_cache(maxsize=4)
def read_index(root):
    """{relative image path 'images/<NNN.Name>/<file>.jpg': image id} and {image id: [x, y, w, h]}."""
    require_folder(root, "CUB-200-2011 (images/, images.txt, bounding_boxes.txt)", "--cub_root")
    ids, path = {}, os.path.join(root, "images.txt")
    for number, fields in enumerate(read_rows(path, 2), 1):
        if not fields[0].isdigit():
            raise DataError(f"{path} line {number}: {' '.join(fields)!r} is not '<id> <NNN.Name>/<file>.jpg'; {ARCHIVE_HINT}")
        ids["images/" + fields[1]] = int(fields[0])
    path = os.path.join(root, "bounding_boxes.txt")
    boxes = {}
    for number, fields in enumerate(read_rows(path, 5), 1):
        try:
            boxes[int(fields[0])] = [float(value) for value in fields[1:]]
        except ValueError:
            raise DataError(f"{path} line {number}: {' '.join(fields)!r} is not '<id> <x> <y> <width> <height>'; {ARCHIVE_HINT}") from None
    return ids, boxes


def list_path(name, lists_dir=CUB_LISTS):
    path = os.path.join(lists_dir, f"{name}.json")
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(lists_dir) if f.endswith(".json")) if os.path.isdir(lists_dir) else []
        raise DataError(f"no CUB group list {path}: the lists of {lists_dir} are {', '.join(known) or 'none'}")
    return path


def read_list(path):
    """A group list -> (image keys 'images/<NNN.Name>/<file>.jpg', labels)."""
    try:
        with open(path) as stream:
            data = json.load(stream)
        names, labels = data["image_names"], data["image_labels"]
        keys = ["images/" + name.replace("\\", "/").rsplit("images/", 1)[-1] for name in names]
        labels = [int(label) for label in labels]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(f"{path} is not a CUB group list (a JSON object with image_names and image_labels): {error}") from None
    if len(keys) != len(labels):
        raise DataError(f"{path}: {len(keys)} image_names but {len(labels)} image_labels")
    return keys, labels


def cub_list(root, name, lists_dir=CUB_LISTS, size=REAL_IMAGE_SIZE, decode=True):
    """The group list `name` of the archive at `root` as RealImages (decoded in memory unless `decode`
    is False: then only ids, boxes and names, for counting). A listed image the archive's images.txt
    lacks, or that has no box, is a one-line DataError."""
    ids, boxes = read_index(root)
    path = list_path(name, lists_dir)
    keys, labels = read_list(path)
    image_ids = []
    for key in keys:
        if key not in ids:
            raise DataError(f"{path} lists {key}, which {os.path.join(root, 'images.txt')} lacks: {ARCHIVE_HINT}")
        if ids[key] not in boxes:
            raise DataError(f"image id {ids[key]} ({key}) has no row in {os.path.join(root, 'bounding_boxes.txt')}: {ARCHIVE_HINT}")
        image_ids.append(ids[key])
    xywh = [boxes[i] for i in image_ids]
    if not decode:
        return keys, image_ids, xywh, labels
    return RealImages(name, root, keys, image_ids, xywh, groups=labels, in_memory=True, size=size)


def class_count(keys):
    """The number of CUB class folders among the keys 'images/<NNN.Name>/<file>'."""
    return len({key.split("/")[1] for key in keys})


# the successor's splits (utils/data/registry.py)
IMAGE_SIZE, CHANNELS, BACKBONE = REAL_IMAGE_SIZE, 3, "vgg16"
FLAGS = ("bg_name", "cub_root", "cub_lists", "cub_adapt_on", "backbone_weights")


def check_args(args):
    """What the CUB stages need of the flags -> a one-line message, or None."""
    if args.bg_name not in TARGET_LISTS:
        return f"--bg_name with --dataset cub names the test / target list: one of {', '.join(TARGET_LISTS)}"
    if not args.cub_root:
        return "--cub_root is needed with --dataset cub: the CUB_200_2011 folder of the official archive"
    return None


def source_splits(args):
    """(train, test) of pretraining and agent training: warbler_train15 and the --bg_name list."""
    return (cub_list(args.cub_root, SOURCE_LIST, args.cub_lists, args.img_size),
            cub_list(args.cub_root, TARGET_LISTS[args.bg_name], args.cub_lists, args.img_size))


def target_splits(args):
    """(adaptation images, test images) of adaptation; the support is drawn from the first. `--cub_adapt_on
    target` (default, as the authors' logged runs): both the --bg_name list (transductive); `source`:
    the code as written, which adapts on warbler_train15 whatever the target."""
    test = cub_list(args.cub_root, TARGET_LISTS[args.bg_name], args.cub_lists, args.img_size)
    if args.cub_adapt_on == "target":
        return test, test
    return cub_list(args.cub_root, SOURCE_LIST, args.cub_lists, args.img_size), test


def describe(args, train_set, test_set, target=False):
    """The line a run prints about its data (adaptation: `target`)."""
    return describe_lists(f"CUB-200-2011 at {args.cub_root}", train_set, test_set, target)
