"""Writing cluttered MNIST (docs/method.md §1, §10.1): one random stream per (split, digit,
background), the `.npy` files, the output checks and the provenance record of clutter_mnist_scale.py.

`args` is the generator's parsed flags (datapath, digits, splits, seed, bg_name, num_clutter,
clutter_size, dtype, source, mnist_root, no_download).
"""

import datetime
import importlib.metadata
import json
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from utils.data.backgrounds import BACKGROUND_PARAMETERS, BACKGROUNDS, make_background_images
from utils.data.clutter import data_files, make_cluttered
from utils.data.mnist import load_mnist
from utils.errors import DataError
from utils.run.files import ensure_writable_folder, write_atomically

# fixed per split name (not its position in --splits) so `--splits test` reproduces a full run's test files
SPLIT_INDEX = {"train": 0, "test": 1}
# each background's entry in its data seed, by name (never 0: SeedSequence pads short entropy with zeros,
# so a trailing 0 would repeat the 2021 stream); a new background takes the next free number
BACKGROUND_SEEDS = {"clean": 1, "clutter": 2, "patch": 3, "gaussian_noise": 4, "impulse_noise": 5}
assert set(BACKGROUND_SEEDS) == set(BACKGROUNDS), "every background needs its seed entry"
PACKAGES = ("numpy", "torch", "torchvision", "mlxtend")


def prepare_output_folders(datapath, splits, bg=None):
    """Create <datapath>/<split>/moreclutter (or <datapath>/<split>/<bg>) and prove it is writable before any work."""
    for split in splits:
        folder = os.path.dirname(data_files(datapath, 0, split, bg)[0])
        try:
            ensure_writable_folder(folder)
        except OSError as err:
            raise DataError(f"cannot write to output folder {folder}: {err.strerror or err}") from None


def save_npy(path, array):
    write_atomically(path, lambda f: np.save(f, array, allow_pickle=False))


def digit_rng(seed, split, digit, bg=None):
    """Independent stream per (split, digit), and per background with --bg_name, so generating a subset of
    digits reproduces a full run's files."""
    if bg is None:
        return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_INDEX[split], digit]))
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_INDEX[split], digit, BACKGROUND_SEEDS[bg]]))


def generate_digit(args, split, digit, images, labels):
    """Generate and save one (split, digit) pair of files; returns the number of images."""
    rng = digit_rng(args.seed, split, digit, args.bg_name)
    if args.bg_name is not None:
        data, boxes = make_background_images(args.bg_name, images[labels == digit], rng, clutter_source=images)
    else:
        data, boxes = make_cluttered(images[labels == digit], images, rng, args.num_clutter, args.clutter_size)
    if args.dtype == "float64":  # the original's storage: float64 pixels and labels
        data, boxes = data.astype(np.float64), boxes.astype(np.float64)
    data_path, label_path = data_files(args.datapath, digit, split, args.bg_name)  # the layout the loader reads
    save_npy(data_path, data)
    save_npy(label_path, boxes)
    return len(data)


def package_versions():
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance_settings(args, info):
    """The settings that make files comparable: same settings, same bytes."""
    if args.bg_name is None:
        settings = {key: getattr(args, key) for key in ("seed", "num_clutter", "clutter_size", "dtype")}
    else:
        settings = {"bg_name": args.bg_name, "parameters": BACKGROUND_PARAMETERS[args.bg_name], "seed": args.seed}
        settings.update(dtype="uint8", label_dtype="float64")
    settings.update(source=info["source"], detail=info["detail"])
    return settings


def write_provenance(split_folder, args, info, counts):
    """<split_folder>/provenance.json. Counts of earlier runs with identical settings are kept (digit-by-digit runs)."""
    path = os.path.join(split_folder, "provenance.json")
    settings = provenance_settings(args, info)
    merged_counts = {}
    try:
        with open(path) as f:
            previous = json.load(f)
        if all(previous.get(key) == value for key, value in settings.items()):
            merged_counts = previous.get("counts", {})
    except (OSError, ValueError):
        pass  # no usable earlier record: start afresh
    merged_counts.update({str(digit): count for digit, count in counts.items()})
    record = dict(settings, counts=dict(sorted(merged_counts.items())), warning=info.get("warning"))
    record.update(packages=package_versions(), command=sys.argv, timestamp=datetime.datetime.now().astimezone().isoformat())
    write_atomically(path, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))


def print_summary(args, counts, seconds):
    for split, per_digit in counts.items():
        listing = ", ".join(f"{digit}: {count}" for digit, count in per_digit.items())
        print(f"{split}: {sum(per_digit.values())} images ({listing})")
    kind = "2021 clutter" if args.bg_name is None else f"background {args.bg_name}"
    print(f"done in {seconds:.1f} s ({kind}, {args.dtype}, seed {args.seed}) -> {os.path.abspath(args.datapath)}")


def check_digits_present(splits, args, info):
    """Every requested digit must occur in every requested split of the source MNIST."""
    for split in args.splits:
        missing = [digit for digit in args.digits if not (splits[split][1] == digit).any()]
        if missing:
            raise DataError(f"the {split} split of the MNIST source ({info['detail']}) has no images of digit(s) {missing}; "
                 f"check the source files or choose other --digits")


def generate(args, start):
    prepare_output_folders(args.datapath, args.splits, args.bg_name)
    try:
        splits, info = load_mnist(args.mnist_root, args.source, download=not args.no_download)
    except ValueError as err:  # malformed idx files (MNISTUnavailable, a UserError, passes through)
        raise DataError(str(err)) from None
    print(f"source: {info['source']} ({info['detail']})")
    check_digits_present(splits, args, info)
    counts = {split: {} for split in args.splits}
    jobs = [(split, digit) for split in args.splits for digit in args.digits]
    for split, digit in tqdm(jobs, desc=args.bg_name or "clutter", unit="digit"):
        images, labels = splits[split]
        counts[split][digit] = generate_digit(args, split, digit, images, labels)
    for split in args.splits:
        # 2021 data: beside the moreclutter folder, as before; a background: in its own folder
        folder = os.path.join(args.datapath, split, *([] if args.bg_name is None else [args.bg_name]))
        write_provenance(folder, args, info, counts[split])
    print_summary(args, counts, time.perf_counter() - start)
    return counts
