"""The successor's runs' data: loaders of encoder pretraining, agent training and adaptation of the
`--dataset` (utils/data/registry.py), the other digits' test splits, the adaptation support set and
the record of which items a run used (docs/method.md §10.2, §11)."""

import os

import numpy as np
import torch

from utils.data.corrupted import SUBSET_SEED_SALT, CorruptedMNIST
from utils.data.registry import DATASETS
from utils.data.loaders import ImageRows, make_loader
from utils.errors import DataError
from utils.localization.frozen import FrozenEncoder, SpeedPlan
from utils.run.files import write_json
from utils.run.logging import warn
from utils.successor.epochs import MAX_ROLLOUT_IMAGES


def build_prototype_loaders(args, device, shuffle_generator, rows=False):
    """Loaders of encoder pretraining and agent training (`--dataset`'s source splits): the (few-shot)
    train split shuffled, the whole test split in order. {"train", "val": None, "test"}. `rows` (agent
    training): batches of (rows, targets) of the datasets (ImageRows), else of (images, targets)."""
    module = DATASETS[args.dataset]
    train_set, test_set = module.source_splits(args)
    print(module.describe(args, train_set, test_set))
    for dataset in (train_set, test_set):  # a split smaller than one group would log every one of its figures as 0
        if len(dataset) < args.samples_per_class:
            raise DataError(f"{dataset.label} has {len(dataset)} images, fewer than "
                            f"--samples_per_class {args.samples_per_class}: no group of K images forms; lower --samples_per_class")
    wrap = ImageRows if rows else (lambda dataset: dataset)
    return {"train": make_loader(wrap(train_set), args.batch_size, True, shuffle_generator, args.workers, device), "val": None,
            "test": make_loader(wrap(test_set), args.batch_size, False, None, args.workers, device)}


def other_digit_test_loaders(args, device, rows=False):
    """(digit, loader) of the test split of each digit but --digit on the same background, for the
    generalisation figures; a digit without data is skipped with a warning. `rows`: as
    `build_prototype_loaders`."""
    if args.dataset != "mnist":  # no other digits
        return
    for digit in (d for d in range(10) if d != args.digit):
        try:
            test_set = CorruptedMNIST(args.datapath, args.bg_name, digit, "test")
        except DataError as error:
            warn(f"generalisation: skipping digit {digit} ({error})")
            continue
        yield digit, make_loader(ImageRows(test_set) if rows else test_set, args.batch_size, False, None, args.workers, device)


def support_indices(count, support_size, seed):
    """The support set: the first `support_size` items of a seeded permutation of the target train split."""
    if support_size > count:
        raise DataError(f"--support_size {support_size} is larger than the {count} target training images")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed + SUBSET_SEED_SALT))
    return order[:support_size].sort().values


def record_subset(run_dir, name, dataset, indices=None):
    """Writes `<run_dir>/<name>.json`: which items of which file a run used (indices into the file)."""
    if not isinstance(dataset, CorruptedMNIST) or (indices is None and dataset.subset is None):  # real images: record_lists
        return None
    chosen = indices if indices is not None else dataset.subset
    if dataset.subset is not None and indices is not None:  # indices into a subset: map back to the file
        chosen = dataset.subset[np.asarray(indices)]
    record = {"bg": dataset.bg, "digit": dataset.digit, "split": dataset.split, "indices": [int(i) for i in chosen]}
    return write_json(os.path.join(run_dir, f"{name}.json"), record, indent=None)


def build_adaptation_loaders(args, device, shuffle_generator):
    """The target domain (`--dataset`'s target splits): its adaptation images (shuffled, labels unused by
    the update; `train_eval` in order for the before/after figures) and its test images, as batches of
    (rows, targets) (ImageRows)."""
    module = DATASETS[args.dataset]
    train_set, test_set = module.target_splits(args)
    print(module.describe(args, train_set, test_set, target=True))
    loader = lambda dataset, shuffle: make_loader(ImageRows(dataset), args.batch_size, shuffle, shuffle_generator if shuffle else None,
                                                  args.workers, device)
    return {"train": loader(train_set, True), "val": None, "test": loader(test_set, False), "train_eval": loader(train_set, False)}


def record_lists(run_dir, loaders, support=None):
    """Writes `<run_dir>/data_lists.json` for real-image datasets: the ids and files of every split in
    order, with counts (COCO: the selection's counts), and the support's ids. Nothing for MNIST."""
    datasets = {name: loader.dataset for name, loader in loaders.items() if loader is not None and name != "train_eval"}
    datasets = {name: getattr(d, "dataset", d) for name, d in datasets.items()}
    if not all(hasattr(d, "record") for d in datasets.values()):
        return None
    record = {name: {**d.record(), **({"counts": d.counts} if hasattr(d, "counts") else {})} for name, d in datasets.items()}
    if support is not None:
        train = datasets["train"]
        record["support"] = {"rows": [int(i) for i in support], "ids": [int(train.ids[i]) for i in support]}
    return write_json(os.path.join(run_dir, "data_lists.json"), record, indent=None)


class BaseMaps(torch.utils.data.Dataset):
    """A dataset with its images replaced by the frozen base's maps `maps` (N, C, h, w): a 1-D index gives
    (maps (B, C, h, w), targets (B, 4)); `targets` and the data fingerprint are the dataset's."""

    def __init__(self, dataset, maps):
        self.dataset, self.maps, self.targets = dataset, maps, dataset.targets

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        rows = torch.as_tensor(index, dtype=torch.long)
        return self.maps[rows.to(self.maps.device)], self.targets[rows].clone()

    def fingerprint_parts(self):
        return self.dataset.fingerprint_parts()


def base_map_loaders(ctx, encoder, precision):
    """Encoder pretraining with a frozen base and no decoder (the VGG16 encoder): the loaders of `ctx`
    over each image's base map, computed once per run on the run's device (the base has no dropout and
    never trains, so every epoch would compute the same maps), in the same order and shuffling."""
    loaders = dict(ctx.loaders)
    for name, shuffle in (("train", True), ("test", False)):
        dataset = ctx.loaders[name].dataset
        parts = []
        with torch.no_grad(), precision.autocast(ctx.device):
            for start in range(0, len(dataset), ctx.args.batch_size):
                images, _ = dataset[torch.arange(start, min(start + ctx.args.batch_size, len(dataset)))]
                parts.append(encoder.features(images.to(ctx.device)).float())
        loaders[name] = make_loader(BaseMaps(dataset, torch.cat(parts)), ctx.args.batch_size, shuffle,
                                    ctx.generators["shuffle"] if shuffle else None, 0, None)  # maps already on the device
    print(f"speed: the frozen VGG16 base ran once per image ({sum(len(loaders[n].dataset) for n in ('train', 'test'))} images); "
          f"every epoch pools and projects from its maps")
    return loaders


def free_memory(device, meminfo="/proc/meminfo"):
    """Bytes free for a cache on `device` (CUDA: the device's free memory; CPU: the available RAM).
    On Linux the kernel's MemAvailable, which counts the page cache that it can reclaim (after
    reading data files most of the RAM is page cache, and the free pages alone turned caches off
    that fitted); elsewhere the free pages."""
    if torch.device(device).type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open(meminfo) as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def build_frozen_encoder(ctx, encoder, precision, names):
    """The run's FrozenEncoder (utils/localization/frozen.py) over the datasets of the loaders `names`,
    as --feature_cache, --box_cache, the device and --amp decide (printed once). Cached maps that would
    take more than half of the free memory stop the run with one line before any work."""
    args = ctx.args
    plan = SpeedPlan.from_flags(args.feature_cache, args.box_cache, ctx.device, args.amp)
    frozen = FrozenEncoder(encoder, ctx.device, precision, args.batch_size, plan, args.seq_len + 1)
    datasets = list({id(d): d for d in (ctx.loaders[name].dataset.dataset for name in names)}.values())  # train and train_eval share one
    needed = frozen.bytes_needed(datasets) if plan.cache_maps else 0
    free = free_memory(ctx.device)
    if needed > free / 2:
        raise DataError(f"the frozen encoder's cached feature maps of {', '.join(names)} need {needed / 2**30:.1f} GiB, "
                        f"{free / 2**30:.1f} GiB are free on {ctx.device}: run with --feature_cache 0 (every batch encodes its images)")
    size = f" ({needed / 2**30:.2f} GiB on {ctx.device})" if needed else ""
    print(f"speed: {plan.describe()}{size}; evaluation rolls out up to {MAX_ROLLOUT_IMAGES} images at once")
    return frozen
