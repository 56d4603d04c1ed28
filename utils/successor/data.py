"""The successor's runs' data: loaders of encoder pretraining, agent training and adaptation, the
other digits' test splits, the adaptation support set and the record of which items a run used
(docs/method.md §10.2)."""

import os

import numpy as np
import torch

from models.encoder import FEATURE_CHANNELS
from utils.data.corrupted import SUBSET_SEED_SALT, CorruptedMNIST
from utils.data.loaders import make_loader
from utils.errors import DataError
from utils.localization.box_cache import EPISODES_KEPT, MIN_PROJECTED_ROWS, PROBE_SEED, BoxCache
from utils.localization.rollout import FeatureRows
from utils.localization.together import RolloutGroups
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


class EncodedImages(torch.utils.data.Dataset):
    """A dataset's images through the frozen encoder, computed once per run in batches of
    `batch_size` in dataset order (the rows past the last whole batch as the last `batch_size`
    images, so every row is an image encoded among `batch_size`), on the run's device in the
    network's precision. A batch gives FeatureRows: the cache and the batch's rows in it (no copy: a
    batch of 512 maps is 231 MB). The encoder's output for an image can depend on the batch size (on
    some CPUs it does for 1 and 3 images), so a batch of another size (the smaller last batch) reads
    the cache only once a probe found that size giving the cached bits: as many images of the first
    batch, drawn in random order, encoded together; otherwise such batches give their images, which
    the epoch encodes. A run gives the same figures with the cache or without. Other attributes are
    the dataset's."""

    def __init__(self, dataset, encoder, batch_size, device, precision, box_steps=0, batched_eval=False):
        self.dataset, self.batch_size = dataset, min(batch_size, len(dataset))
        self.encoder, self.device, self.precision = encoder, device, precision
        self.other_sizes = {}  # batch size -> whether batches of that size read the cache (probed once)
        # box_steps > 0: the batches' rollouts share a BoxCache of episodes of that many boxes
        self.box_cache = BoxCache(len(dataset), box_steps, device) if box_steps else None
        # batched_eval (a split only evaluated, in the same batches every epoch): evaluation passes roll
        # consecutive batches out together (utils/localization/together.py), and a batch's ground-truth
        # embeddings are computed once per run
        self.rollout_groups = RolloutGroups(batched_eval)
        self.kept = {} if batched_eval else None
        size, chunks = self.batch_size, []
        for start in range(0, len(dataset), size):
            first = min(start, len(dataset) - size)  # the last rows: within the last `size` images
            chunks.append(self._encode(list(range(first, first + size)))[start - first:])
        self.features = torch.cat(chunks)

    def _encode(self, index):
        images, _ = self.dataset[index]
        with torch.no_grad(), self.precision.autocast(self.device):
            return self.encoder.features(images.to(self.device))

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        index = torch.as_tensor(index, dtype=torch.long)
        if index.dim() == 1 and (len(index) == self.batch_size or self._reads_cache(index)):
            rows = FeatureRows(self.features, index.to(self.features.device), self.box_cache, self.kept)
            return rows, self.dataset.targets[index].clone()
        return self.dataset[index]

    def _reads_cache(self, index):
        """Whether a batch smaller than the cache's reads it (a frozen encoder in eval mode): once per
        size, that many images of the first batch, in random order, encoded together must give every
        image its cached bits."""
        size = len(index)
        if self.encoder.training or not 0 < size < self.batch_size:
            return False
        if size not in self.other_sizes:
            rows = torch.randperm(self.batch_size, generator=torch.Generator().manual_seed(PROBE_SEED))[:size]
            self.other_sizes[size] = torch.equal(self._encode(rows.tolist()), self.features[rows.to(self.features.device)])
        return self.other_sizes[size]

    def __getattr__(self, name):  # images, targets, bg, digit, split, subset, file_count: the dataset's
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def images_of(loader):
    """The image dataset behind a run's loader, with or without a feature cache: what code that
    indexes images itself (support sets, figures) must index, since a cache serves feature maps."""
    dataset = loader.dataset
    return dataset.dataset if isinstance(dataset, EncodedImages) else dataset


def feature_bytes(dataset, encoder, device, precision):
    """The memory the encoder's feature maps of `dataset` take (from one image's)."""
    with torch.no_grad(), precision.autocast(device):
        one = encoder.features(dataset[[0]][0].to(device))
    return len(dataset) * one[0].numel() * one.element_size()


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


def box_cache_steps(args, device, precision):
    """Boxes per episode of the runs' BoxCaches (T + 1), or 0 where none is kept: --box_cache 0;
    CUDA, where the head costs little and a lookup would wait for the device every step; bf16 and
    --compile, whose heads are not the one a cache reads back; batches under 16 images (box_cache.py)."""
    on = (args.box_cache and torch.device(device).type == "cpu" and precision.amp in (None, "none") and not args.compile
          and args.batch_size >= MIN_PROJECTED_ROWS)
    return args.seq_len + 1 if on else 0


def batched_eval_on(args, device, precision):
    """--batched_eval 1 on a CPU in float32 without --compile (on CUDA the probe was never run: batch
    by batch, as before)."""
    return bool(args.batched_eval and torch.device(device).type == "cpu" and precision.amp in (None, "none") and not args.compile)


def box_cache_bytes(dataset, encoder, steps):
    """The memory a BoxCache of `dataset` takes (episodes of `steps` boxes)."""
    return BoxCache.bytes_needed(len(dataset), steps, FEATURE_CHANNELS * encoder.pooling_size**2, encoder.dim)


def cache_features(ctx, encoder, precision, names, trained=("train",)):
    """With --feature_cache 1, replaces the run's loaders `names` by loaders of EncodedImages of their
    datasets, drawing the same batches (their own batch sampler and generator), with a BoxCache per
    dataset where `box_cache_steps` keeps one; each off, with one line, when it would take more than
    half of the free memory. The evaluation passes of a dataset that no loader of `trained` reads roll
    its batches out together where `batched_eval_on` (a trained dataset's BoxCache serves the training
    batch size)."""
    if not ctx.args.feature_cache:
        return
    loaders = {name: ctx.loaders[name] for name in names}
    datasets = {id(loader.dataset): loader.dataset for loader in loaders.values()}  # adaptation's train and train_eval share one
    needed = sum(feature_bytes(dataset, encoder, ctx.device, precision) for dataset in datasets.values())
    free = free_memory(ctx.device)
    if needed > free / 2:
        warn(f"feature cache off: the frozen encoder's feature maps need {needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB are free "
             f"on {ctx.device}; every batch encodes its images (--feature_cache 0 turns the cache off without this line)")
        return
    steps = box_cache_steps(ctx.args, ctx.device, precision)
    boxes_needed = sum(box_cache_bytes(dataset, encoder, steps) for dataset in datasets.values()) if steps else 0
    if steps and needed + boxes_needed > free / 2:
        warn(f"box cache off: with the feature maps it needs {(needed + boxes_needed) / 2**30:.1f} GiB, {free / 2**30:.1f} GiB are free "
             f"on {ctx.device}; every box is pooled and projected (--box_cache 0 turns it off without this line)")
        steps = boxes_needed = 0
    trained_sets = {id(loaders[name].dataset) for name in trained if name in loaders}
    batched = batched_eval_on(ctx.args, ctx.device, precision)
    encoded_sets = {}
    for name, loader in loaders.items():
        batches = loader.sampler  # make_loader's BatchSampler: index batches, shuffled by the run's generator for "train"
        key = (id(loader.dataset), batches.batch_size)
        if key not in encoded_sets:
            encoded_sets[key] = EncodedImages(loader.dataset, encoder, batches.batch_size, ctx.device, precision, steps,
                                              batched and id(loader.dataset) not in trained_sets)
        encoded = encoded_sets[key]
        ctx.loaders[name] = torch.utils.data.DataLoader(encoded, sampler=batches, batch_size=None, generator=loader.generator)
    boxes = f"; a box cache of each image's latest {EPISODES_KEPT} episodes ({boxes_needed / 2**30:.2f} GiB)" if steps else ""
    print(f"feature cache: the frozen encoder's feature maps of {', '.join(names)} ({needed / 2**30:.2f} GiB on {ctx.device}), "
          f"once per run{boxes}")


def report_reuse(loaders):
    """Prints what the caches behind a run's `loaders` {name: loader or None} saved: the share of boxes
    their BoxCaches served, and the evaluation batches rolled out together."""
    datasets = {id(d): d for d in (getattr(loader, "dataset", None) for loader in loaders.values()) if isinstance(d, EncodedImages)}
    caches = [d.box_cache for d in datasets.values() if d.box_cache is not None and d.box_cache.lookups]
    if caches:
        hits, lookups = sum(c.hits for c in caches), sum(c.lookups for c in caches)
        print(f"box cache: {100.0 * hits / lookups:.1f} % of {lookups:,} boxes looked up were read, not computed")
    groups = [d.rollout_groups for d in datasets.values() if d.rollout_groups.rollouts]
    if groups:
        print(f"batched evaluation: {sum(g.batches for g in groups):,} evaluation batches rolled out in {sum(g.rollouts for g in groups):,} "
              "rollouts")
