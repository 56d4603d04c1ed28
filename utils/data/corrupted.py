"""The successor's dataset: one background kind and digit of corrupted MNIST, with seeded few-shot
training subsets (docs/method.md §10.2)."""

import numpy as np

from utils.data.backgrounds import BACKGROUNDS
from utils.data.datasets import MNIST_MEAN, MNIST_STD, ClutteredMNIST
from utils.errors import DataError

# mixed into the seeds of the few-shot subsets and support sets, so they draw apart from every other --seed stream
SUBSET_SEED_SALT = 0x5A3E
# `--bg_name moreclutter`: the 2021 generator's data (32 fragments of 6x6, clutter_mnist_scale.py without --bg_name)
MORECLUTTER = "moreclutter"
# --target_norm: the (mean, std) adaptation normalises the target images with; author_log: the authors' logged
# adaptation loader's statistics (every source stage used MNIST's)
TARGET_NORMS = {"source": (MNIST_MEAN, MNIST_STD), "author_log": (0.0334, 0.1653)}


def subset_indices(count, size, seed, digit):
    """The first `size` items of a permutation of range(count) drawn from (seed, digit) alone, so
    every background kind, pretraining and agent training use the same MNIST digits."""
    if size > count:
        raise DataError(f"--sample_size {size} is larger than the {count} training images of digit {digit}")
    order = np.random.default_rng(np.random.SeedSequence([seed, digit, SUBSET_SEED_SALT])).permutation(count)
    return np.sort(order[:size])


class CorruptedMNIST(ClutteredMNIST):
    """One background kind, digit and split: `<datapath>/<split>/<bg>/<d>_{data,label}.npy`, or with
    bg `moreclutter` the 2021 data of that digit (`<datapath>/<split>/moreclutter/`).

    Items as ClutteredMNIST (normalised image, `[x1, y1, x2, y2]` target; `norm` the statistics).
    `sample_size` keeps a seeded few-shot subset of the train split (`subset`: the file's indices);
    the test split is whole.
    """

    def __init__(self, datapath, bg, digit, split, sample_size=None, seed=0, norm=(MNIST_MEAN, MNIST_STD)):
        super().__init__(datapath, digit, split, bg=None if bg == MORECLUTTER else bg, norm=norm)
        self.bg, self.subset, self.file_count = bg, None, len(self)
        self.label = f"the {split} split of {bg} digit {digit}"
        if sample_size is not None and split == "train":
            self.subset = subset_indices(self.file_count, sample_size, seed, digit)
            self.images, self.targets = self.images[self.subset], self.targets[self.subset]


# the successor's splits (utils/data/registry.py)
IMAGE_SIZE, CHANNELS, BACKBONE = 84, 1, "mnist"
FLAGS = ("datapath", "digit", "bg_name", "sample_size", "target_norm", "visualize")


def check_args(args):
    """What the MNIST stages need of the flags -> a one-line message, or None."""
    if args.bg_name not in (*BACKGROUNDS, MORECLUTTER):
        # the parser's choices are MNIST's backgrounds and CUB's lists
        return (f"--bg_name {args.bg_name} names a CUB list (--dataset cub); MNIST's backgrounds are "
                f"{', '.join((*BACKGROUNDS, MORECLUTTER))}")
    return None


def source_splits(args):
    """(train: the seeded few-shot subset of --sample_size, test: whole) of --bg_name and --digit."""
    return (CorruptedMNIST(args.datapath, args.bg_name, args.digit, "train", args.sample_size, args.seed),
            CorruptedMNIST(args.datapath, args.bg_name, args.digit, "test"))


def target_splits(args):
    """(train, test) of the target --bg_name and --digit, normalised with the statistics of --target_norm."""
    norm = TARGET_NORMS[args.target_norm]
    return (CorruptedMNIST(args.datapath, args.bg_name, args.digit, "train", args.sample_size, args.seed, norm=norm),
            CorruptedMNIST(args.datapath, args.bg_name, args.digit, "test", norm=norm))


def describe(args, train_set, test_set, target=False):
    """The line a run prints about its data (adaptation: `target`)."""
    if not target:
        subset = f" (seeded few-shot subset of {train_set.file_count})" if train_set.subset is not None else ""
        return f"data: {args.bg_name}, digit {args.digit}: {len(train_set)} {train_set.split}{subset} / {len(test_set)} test images " \
               f"from {args.datapath}"
    line = f"target: {args.bg_name}, digit {args.digit}: {len(train_set)} unlabelled train / {len(test_set)} test images from {args.datapath}"
    if args.target_norm != "source":
        norm, source = TARGET_NORMS[args.target_norm], TARGET_NORMS["source"]
        line += (f"\ntarget normalisation: {args.target_norm} (mean {norm[0]}, std {norm[1]}; every source stage used {source[0]} / "
                 f"{source[1]}): a labelled reproduction of the authors' logged runs")
    return line
