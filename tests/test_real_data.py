"""Real photographs (utils/data/real.py, cub.py, coco.py, registry.py; tools/real_data.py) on tiny CUB and
COCO folders written in their native formats: lists resolved, boxes converted, the COCO one-instance
selection, preprocessing against OpenCV, the data tool's figures by hand, and every bad input as one line."""

import hashlib
import json
import os

import numpy as np
import pytest
import torch

from real_folders import make_coco, make_cub, write_jpeg
from tools import real_data
from utils.data import coco, cub
from utils.data.real import decode, input_boxes, preprocess
from utils.data.registry import DATASETS
from utils.errors import DataError

SHIPPED_SHA256 = {  # the original's group lists, byte for byte
    "gull_59_64": "07a2e17cab920fa68cc141ea3ddbf9127c47cb0809fc73e47258532d598c8dc2",
    "kingfisher_79_83": "de40d8dfea2b5d7334162c26e199013718b5771d3a5301e01fea1486723ab852",
    "oriole_95_98": "6e81d9023db0524fb583379f01e775cf7549224e4ec6e294bf8807830019e3eb",
    "sparrow_114_119": "59839a6c9781eb27dc36932b667b36fe0ac9cb0347cf8220b9e825aa0e10d2c0",
    "vireo_151_157": "59d3953b6d64c4c56f0fe1cc8375510a5bd7e9444d561f293730464a076acfb6",
    "warbler_train15": "0ffc49b07a61222b86ded030dcf0a3099f72736c2196a3119af661e13542d9ea",
    "warbler_val5": "78921f031fea6bf1aedf87c5c7be9adbccd4cf3811fca1a009a32d428c6bd1f5",
    "wren_193_197": "487ccde559357c17c22e6f1d1df2cc1c8d69689ba4cc354cea990c8cabe83efa",
}
SHIPPED_COUNTS = {"warbler_train15": 896, "warbler_val5": 294, "wren_193_197": 299, "gull_59_64": 359, "oriole_95_98": 239,
                  "sparrow_114_119": 357, "vireo_151_157": 409, "kingfisher_79_83": 300}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("real"))
    cub_root, lists_dir, cub_rows = make_cub(root)
    coco_root, coco_rows = make_coco(root)
    return {"cub": cub_root, "lists": lists_dir, "cub_rows": cub_rows, "coco": coco_root, "coco_rows": coco_rows}


def test_shipped_lists_are_the_originals():
    for name, digest in SHIPPED_SHA256.items():
        path = os.path.join(cub.CUB_LISTS, f"{name}.json")
        with open(path, "rb") as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == digest
        keys, labels = cub.read_list(path)
        assert len(keys) == SHIPPED_COUNTS[name] and all(k.startswith("images/") and k.count("/") == 2 for k in keys)
    assert set(cub.TARGET_LISTS.values()) | {cub.SOURCE_LIST} == set(SHIPPED_SHA256)


def test_cub_lists_resolve_through_the_archive_files(folders):
    dataset = cub.cub_list(folders["cub"], "warbler_train15", folders["lists"])
    rows = folders["cub_rows"]["warbler_train15"]
    assert dataset.keys == [key for _, key, _, _ in rows] and dataset.ids == [i for i, _, _, _ in rows]
    images, targets = dataset[torch.arange(len(dataset))]
    assert images.shape == (6, 3, 224, 224) and images.dtype == torch.float32
    # hand-computed: image id 1 is 50 x 64 (SIZES[1]) with box [x 1, y 2.5, w 25, h 21.333...] in original pixels
    image_id, key, box, (width, height) = rows[0]
    assert (width, height) == (50, 64) and box == (1.0, 2.5, 25.0, 64 / 3)
    expected = [1.0 * 224 / 50, 2.5 * 224 / 64, (1.0 + 25.0 - 1) * 224 / 50, (2.5 + 64 / 3 - 1) * 224 / 64]
    assert torch.allclose(targets[0], torch.tensor(expected, dtype=torch.float32))
    assert dataset.xywh[0].tolist() == list(box)  # the stored rows are never edited
    again = dataset[torch.tensor([0])][1]
    assert torch.equal(again[0], targets[0])


def test_coco_selection_keeps_exactly_one_instance_crowd_included(folders):
    for split in ("train", "val"):
        for name in ("dog", "cat"):
            dataset = coco.coco_list(folders["coco"], split, name)
            rows = folders["coco_rows"][(split, name)]
            assert dataset.ids == [i for i, _, _, _ in rows] and dataset.ids == sorted(dataset.ids)
    dogs = coco.coco_list(folders["coco"], "train", "dog")
    assert dogs.counts == {"with_class": 5, "single": 3, "single_crowd": 1, "multi": 2}
    # hand-computed: image 109 is 64 x 48 with bbox [4, 6, 30.5, 20]
    row = dogs.ids.index(109)
    expected = [4 * 224 / 64, 6 * 224 / 48, (4 + 30.5 - 1) * 224 / 64, (6 + 20 - 1) * 224 / 48]
    assert torch.allclose(dogs.targets[row], torch.tensor(expected, dtype=torch.float32))
    for _ in range(2):  # every access converts afresh: no box is divided twice (the original's in-place edit)
        assert torch.allclose(dogs[torch.tensor([row])][1][0], torch.tensor(expected, dtype=torch.float32))


def test_torch_resize_equals_opencv(tmp_path):
    """torch's bilinear resize (align_corners=False, no antialiasing) is OpenCV's default cv2.resize up to
    float rounding: within 0.02 of a grey level (OpenCV rounds its interpolation weights), on up- and
    downscaled random images; the whole preprocessing then differs by < 1e-3."""
    cv2 = pytest.importorskip("cv2")
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    for width, height in ((500, 375), (97, 130), (224, 224), (31, 300)):
        pixels = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
        resized = cv2.resize(pixels, (224, 224))  # OpenCV's default: bilinear, half-pixel centres, no antialiasing
        ours = F.interpolate(torch.from_numpy(pixels).permute(2, 0, 1)[None], size=(224, 224), mode="bilinear",
                             align_corners=False, antialias=False)[0].permute(1, 2, 0)
        assert (ours - torch.from_numpy(resized)).abs().max() < 0.02, (width, height)
        reference = torch.from_numpy(((resized / 256.0 - mean) / std).transpose(2, 0, 1).copy())
        assert (preprocess(pixels) - reference).abs().max() < 1e-3


def test_gray_images_become_rgb(tmp_path):
    path = str(tmp_path / "gray.jpg")
    write_jpeg(path, 20, 10, gray=True, seed=0)
    pixels = decode(path)
    assert pixels.shape == (10, 20, 3) and np.array_equal(pixels[..., 0], pixels[..., 2])


def test_box_rule_matches_the_spec_by_hand():
    boxes = input_boxes([[10.0, 20.0, 100.0, 50.0]], [448.0], [112.0])
    assert boxes.tolist() == [[5.0, 40.0, 54.5, 138.0]]


def run_tool(capsys, *args):
    """tools/real_data.py in-process -> (exit code, stdout, stderr)."""
    code = real_data.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_real_data_tool_figures_by_hand(folders, tmp_path, capsys):
    out = str(tmp_path / "cub.json")
    code, _, err = run_tool(capsys, "--dataset", "cub", "--cub_root", folders["cub"], "--cub_lists", folders["lists"], "--out", out)
    assert code == 0, err
    with open(out) as stream:
        figures = json.load(stream)
    assert set(figures) == {"warbler_train15", "warbler_val5", "wren_193_197"}
    for name, rows in folders["cub_rows"].items():
        assert set(figures[name]) == {"images", "classes", "whole_image_corloc", "box_side_quartiles"}
        assert figures[name]["images"] == len(rows)
        assert figures[name]["classes"] == len({key.split("/")[1] for _, key, _, _ in rows})
        sides, hits = [], 0
        for _, _, (x, y, w, h), (width, height) in rows:  # by hand: the box rule, then IoU with [0, 0, 223, 223]
            x1, y1, x2, y2 = x * 224 / width, y * 224 / height, (x + w - 1) * 224 / width, (y + h - 1) * 224 / height
            area = (x2 - x1) * (y2 - y1)
            inter = (min(x2, 223) - max(x1, 0)) * (min(y2, 223) - max(y1, 0))
            hits += inter / (area + 223 * 223 - inter) >= 0.5
            sides.append(area ** 0.5)
        assert figures[name]["whole_image_corloc"] == pytest.approx(100.0 * hits / len(rows))
        assert figures[name]["box_side_quartiles"] == pytest.approx(list(np.quantile(sides, [0.25, 0.5, 0.75])), rel=1e-5)
    out = str(tmp_path / "coco.json")
    code, printed, err = run_tool(capsys, "--dataset", "coco", "--coco_root", folders["coco"], "--classes", "dog", "cat", "--out", out)
    assert code == 0, err
    assert "train2017_dog: 5 images with dog, 3 with exactly one (1 of them a crowd annotation), 2 with several" in printed
    with open(out) as stream:
        figures = json.load(stream)
    assert list(figures) == ["train2017_dog", "val2017_dog", "train2017_cat", "val2017_cat"]
    assert figures["train2017_dog"]["images"] == 3 and figures["train2017_cat"]["classes"] == 1
    # the crowd dog covers its whole 50 x 64 image: with the -1 rule its box is [0, 0, 219.5, 220.5], IoU 0.976
    # the two others are small: whole-image CorLoc 1 of 3
    assert figures["train2017_dog"]["whole_image_corloc"] == pytest.approx(100 / 3)


def broken_cub(folders, tmp_path, edit):
    """A copy of the tiny CUB folder with one file edited by `edit(root)`."""
    import shutil

    root = str(tmp_path / "cub")
    shutil.copytree(folders["cub"], root)
    edit(root)
    cub.read_index.cache_clear()
    return root


@pytest.mark.parametrize("case, expected", [
    ("missing_root", "is not a folder"),
    ("no_images_txt", "images.txt is missing"),
    ("bad_jpeg", "does not decode"),
    ("not_in_archive", "which"),
])
def test_cub_errors_are_one_line(folders, tmp_path, case, expected):
    def edit(root):
        if case == "no_images_txt":
            os.remove(os.path.join(root, "images.txt"))
        elif case == "bad_jpeg":
            key = folders["cub_rows"]["warbler_train15"][2][1]
            with open(os.path.join(root, key), "wb") as stream:
                stream.write(b"not a jpeg")
        elif case == "not_in_archive":
            with open(os.path.join(root, "images.txt")) as stream:
                lines = stream.readlines()
            with open(os.path.join(root, "images.txt"), "w") as stream:
                stream.writelines(lines[1:])

    root = str(tmp_path / "nowhere") if case == "missing_root" else broken_cub(folders, tmp_path, edit)
    with pytest.raises(DataError) as error:
        cub.cub_list(root, "warbler_train15", folders["lists"])
    message = str(error.value)
    assert expected in message and "\n" not in message
    if case == "bad_jpeg":
        assert folders["cub_rows"]["warbler_train15"][2][1] in message  # names the image's path
    if case == "not_in_archive":
        assert folders["cub_rows"]["warbler_train15"][0][1] in message


def test_coco_errors_are_one_line(folders, tmp_path, capsys):
    with pytest.raises(DataError, match="no class 'zebra'"):
        coco.coco_list(folders["coco"], "train", "zebra")
    with pytest.raises(DataError, match="instances_train2017.json is missing"):
        os.makedirs(tmp_path / "empty")
        coco.coco_list(str(tmp_path / "empty"), "train", "dog")
    code, _, err = run_tool(capsys, "--dataset", "coco", "--coco_root", folders["coco"], "--classes", "zebra")
    assert code == 1 and err.count("\n") == 1 and "zebra" in err and "Traceback" not in err


def test_unknown_list_names_the_folder(folders):
    with pytest.raises(DataError, match="no CUB group list"):
        cub.cub_list(folders["cub"], "gull_59_64", folders["lists"])


def test_a_new_dataset_is_one_module_and_one_registry_line():
    import types

    toy = types.SimpleNamespace(IMAGE_SIZE=224, CHANNELS=3, BACKBONE="vgg16", check_args=lambda args: None,
                                source_splits=None, target_splits=None, describe=lambda args: "toy")
    DATASETS["toy"] = toy
    try:
        from utils.successor.flags import get_successor_parser

        parser = get_successor_parser()
        assert "toy" in parser._option_string_actions["--dataset"].choices
    finally:
        del DATASETS["toy"]
    for module in DATASETS.values():
        assert {"IMAGE_SIZE", "CHANNELS", "BACKBONE", "check_args", "source_splits", "target_splits", "describe"} <= set(dir(module))


@pytest.mark.slow
def test_pretraining_on_kept_base_maps_equals_the_base_every_batch(folders):
    """The VGG16 base runs once per image per run in pretraining (utils/successor/data.py BaseMaps): an
    epoch over the kept maps gives the figures of an epoch that runs the base on every batch (float32:
    a convolution over another batch may round its last bits differently)."""
    import dataclasses

    from models import VGGRoIEncoder
    from utils.data.loaders import make_loader
    from utils.successor.config import EncoderConfig
    from utils.successor.data import BaseMaps
    from utils.successor.epochs import encoder_epoch

    dataset = cub.cub_list(folders["cub"], "warbler_train15", folders["lists"])
    torch.manual_seed(0)
    encoder = VGGRoIEncoder(dim=16)
    config = EncoderConfig(group_size=3, lamb=1.0, image_size=224)
    with torch.no_grad():
        maps = encoder.features(dataset.pixels)
    results = []
    for data, cfg in ((dataset, config), (BaseMaps(dataset, maps), dataclasses.replace(config, maps_given=True))):
        torch.manual_seed(1)  # the head's dropout
        loader = make_loader(data, 3, True, torch.Generator().manual_seed(2))
        with torch.no_grad():
            results.append(encoder_epoch(encoder, loader, "cpu", torch.Generator().manual_seed(3), cfg, 0, phase="Test"))
    assert results[0].keys() == results[1].keys()
    for key in results[0]:
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-4, abs=1e-6), key
