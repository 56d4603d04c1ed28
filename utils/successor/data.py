"""The successor's runs' data: loaders of encoder pretraining, agent training and adaptation, the
other digits' test splits, the adaptation support set and the record of which items a run used
(docs/method.md §10.2)."""

import os

import numpy as np
import torch

from utils.data.corrupted import SUBSET_SEED_SALT, CorruptedMNIST
from utils.data.loaders import make_loader
from utils.errors import DataError
from utils.run.files import write_json
from utils.run.logging import warn


def describe(dataset):
    subset = f" (seeded few-shot subset of {dataset.file_count})" if dataset.subset is not None else ""
    return f"{len(dataset)} {dataset.split}{subset}"


def build_prototype_loaders(args, device, shuffle_generator):
    """Loaders of encoder pretraining and agent training: the (few-shot) train split shuffled,
    the whole test split in order. {"train", "val": None, "test"}."""
    train_set = CorruptedMNIST(args.datapath, args.bg_name, args.digit, "train", args.sample_size, args.seed)
    test_set = CorruptedMNIST(args.datapath, args.bg_name, args.digit, "test")
    print(f"data: {args.bg_name}, digit {args.digit}: {describe(train_set)} / {len(test_set)} test images from {args.datapath}")
    for dataset in (train_set, test_set):  # a split smaller than one group would log every one of its figures as 0
        if len(dataset) < args.samples_per_class:
            raise DataError(f"the {dataset.split} split of {args.bg_name} digit {args.digit} has {len(dataset)} images, fewer than "
                            f"--samples_per_class {args.samples_per_class}: no group of K images forms; lower --samples_per_class")
    return {"train": make_loader(train_set, args.batch_size, True, shuffle_generator, args.workers, device), "val": None,
            "test": make_loader(test_set, args.batch_size, False, None, args.workers, device)}


def other_digit_test_loaders(args, device):
    """(digit, loader) of the test split of each digit but --digit on the same background, for the
    generalisation figures; a digit without data is skipped with a warning."""
    for digit in (d for d in range(10) if d != args.digit):
        try:
            test_set = CorruptedMNIST(args.datapath, args.bg_name, digit, "test")
        except DataError as error:
            warn(f"generalisation: skipping digit {digit} ({error})")
            continue
        yield digit, make_loader(test_set, args.batch_size, False, None, args.workers, device)


def support_indices(count, support_size, seed):
    """The support set: the first `support_size` items of a seeded permutation of the target train split."""
    if support_size > count:
        raise DataError(f"--support_size {support_size} is larger than the {count} target training images")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed + SUBSET_SEED_SALT))
    return order[:support_size].sort().values


def record_subset(run_dir, name, dataset, indices=None):
    """Writes `<run_dir>/<name>.json`: which items of which file a run used (indices into the file)."""
    if indices is None and dataset.subset is None:
        return None
    chosen = indices if indices is not None else dataset.subset
    if dataset.subset is not None and indices is not None:  # indices into a subset: map back to the file
        chosen = dataset.subset[np.asarray(indices)]
    record = {"bg": dataset.bg, "digit": dataset.digit, "split": dataset.split, "indices": [int(i) for i in chosen]}
    return write_json(os.path.join(run_dir, f"{name}.json"), record, indent=None)


def build_adaptation_loaders(args, device, shuffle_generator):
    """The target domain: its train split (shuffled, labels unused by the update; `train_eval` in
    order for the before/after figures) and its test split."""
    train_set = CorruptedMNIST(args.datapath, args.bg_name, args.digit, "train", args.sample_size, args.seed)
    test_set = CorruptedMNIST(args.datapath, args.bg_name, args.digit, "test")
    print(f"target: {args.bg_name}, digit {args.digit}: {len(train_set)} unlabelled train / {len(test_set)} test images "
          f"from {args.datapath}")
    loader = lambda dataset, shuffle: make_loader(dataset, args.batch_size, shuffle, shuffle_generator if shuffle else None,
                                                  args.workers, device)
    return {"train": loader(train_set, True), "val": None, "test": loader(test_set, False), "train_eval": loader(train_set, False)}
