"""Tiny CUB-200-2011 and COCO 2017 folders in their native formats, written by the tests: a few JPEGs
per class (gray and RGB, varied sizes), the archive's text files / the annotation JSON, and CUB group
lists in the original's JSON format (absolute paths of another machine)."""

import json
import os

import numpy as np
from PIL import Image

# CUB: (class id, folder, images per class, list); sizes cycle through SIZES, every third image gray
CUB_CLASSES = ((158, "158.Bay_breasted_Warbler", 3, "warbler_train15"), (159, "159.Black_and_white_Warbler", 3, "warbler_train15"),
               (178, "178.Swainson_Warbler", 3, "warbler_val5"), (193, "193.Bewick_Wren", 2, "wren_193_197"),
               (194, "194.Cactus_Wren", 2, "wren_193_197"), (1, "001.Black_footed_Albatross", 1, None))
SIZES = ((40, 30), (50, 64), (33, 33), (64, 48))
# COCO categories (ids as the real file's)
COCO_CATEGORIES = ({"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}, {"id": 1, "name": "person"})


def write_jpeg(path, width, height, gray, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if gray:
        Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), "L").save(path, quality=95)
    else:
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB").save(path, quality=95)


def make_cub(root):
    """Writes a CUB_200_2011 folder and its lists -> (root, lists folder, {list: [(id, key, box xywh, (w, h))]})."""
    cub, lists_dir = os.path.join(root, "CUB_200_2011"), os.path.join(root, "cub_lists")
    os.makedirs(lists_dir, exist_ok=True)
    image_lines, box_lines, label_lines, split_lines, lists = [], [], [], [], {}
    image_id = 0
    for class_id, folder, count, list_name in CUB_CLASSES:
        for k in range(count):
            image_id += 1
            width, height = SIZES[image_id % len(SIZES)]
            key = f"{folder}/{folder.split('.')[1]}_{k:04d}.jpg"
            write_jpeg(os.path.join(cub, "images", key), width, height, gray=image_id % 3 == 0, seed=image_id)
            box = (1.0 + k, 2.5, width / 2, height / 3 + k)
            image_lines.append(f"{image_id} {key}")
            box_lines.append(f"{image_id} {box[0]} {box[1]} {box[2]} {box[3]}")
            label_lines.append(f"{image_id} {class_id}")
            split_lines.append(f"{image_id} {k % 2}")
            if list_name:
                lists.setdefault(list_name, []).append((image_id, "images/" + key, box, (width, height)))
    for name, lines in (("images.txt", image_lines), ("bounding_boxes.txt", box_lines), ("image_class_labels.txt", label_lines),
                        ("train_test_split.txt", split_lines)):
        with open(os.path.join(cub, name), "w") as stream:
            stream.write("\n".join(lines) + "\n")
    for name, rows in lists.items():
        names = [f"/research/someone/Dataset/CUB_200_2011/{key}" for _, key, _, _ in rows]
        labels = [sorted({key.split("/")[1] for _, key, _, _ in rows}).index(key.split("/")[1]) for _, key, _, _ in rows]
        with open(os.path.join(lists_dir, f"{name}.json"), "w") as stream:
            json.dump({"label_names": [c[1] for c in CUB_CLASSES], "image_names": names, "image_labels": labels}, stream)
    return cub, lists_dir, lists


def make_coco(root):
    """Writes a COCO 2017 folder with cat and dog images: per split, images with one dog, one crowd
    dog, two dogs, one dog among persons, one cat, one cat and two dogs -> (root, {(split, class):
    [(id, file, bbox xywh, (w, h))] of the images that must be selected, ids ascending})."""
    coco = os.path.join(root, "coco")
    os.makedirs(os.path.join(coco, "annotations"), exist_ok=True)
    expected = {}
    for split, base in (("train", 100), ("val", 500)):
        # (image id, size, [(category, bbox, iscrowd)])
        layout = [(base + 9, (64, 48), [(18, [4.0, 6.0, 30.5, 20.0], 0)]),
                  (base + 3, (50, 64), [(18, [0.0, 0.0, 49.0, 63.0], 1)]),
                  (base + 5, (40, 30), [(18, [1.0, 1.0, 10.0, 10.0], 0), (18, [20.0, 5.0, 10.0, 10.0], 0)]),
                  (base + 1, (48, 48), [(18, [10.0, 12.0, 20.0, 24.0], 0), (1, [0.0, 0.0, 5.0, 5.0], 0), (1, [3.0, 3.0, 9.0, 9.0], 0)]),
                  (base + 7, (33, 40), [(17, [2.0, 3.0, 25.0, 30.0], 0)]),
                  (base + 2, (60, 44), [(17, [5.0, 5.0, 40.0, 30.0], 0), (18, [1.0, 1.0, 8.0, 8.0], 0), (18, [30.0, 2.0, 9.0, 9.0], 0)])]
        images, annotations = [], []
        for image_id, (width, height), objects in layout:
            file_name = f"{image_id:012d}.jpg"
            write_jpeg(os.path.join(coco, f"{split}2017", file_name), width, height, gray=image_id % 2 == 0, seed=image_id)
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
            for category, bbox, crowd in objects:
                annotations.append({"id": len(annotations) + 1 + base * 10, "image_id": image_id, "category_id": category, "bbox": bbox,
                                    "area": bbox[2] * bbox[3], "iscrowd": crowd, "segmentation": []})
            for name, category in (("dog", 18), ("cat", 17)):
                mine = [o for o in objects if o[0] == category]
                if len(mine) == 1:
                    expected.setdefault((split, name), []).append((image_id, file_name, mine[0][1], (width, height)))
        with open(os.path.join(coco, "annotations", f"instances_{split}2017.json"), "w") as stream:
            json.dump({"images": images, "annotations": annotations, "categories": list(COCO_CATEGORIES)}, stream)
    return coco, {key: sorted(rows) for key, rows in expected.items()}
