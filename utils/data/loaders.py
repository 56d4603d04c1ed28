"""Batch loading: whole-index batches of a dataset, the validation split and the 2021 scripts' loaders."""

import torch

from utils.data.datasets import ClutteredMNIST
from utils.errors import DataError


def make_loader(dataset, batch_size, shuffle, generator=None, workers=0, device=None):
    """Batches of a ClutteredMNIST: a DataLoader whose items are whole index batches.

    Each batch is fetched with one tensor index (no per-item Python work); `workers` > 0 moves
    that into worker processes. Shuffling uses `generator`, so a seeded run sees the same order;
    without one, an unshuffled loader still gets a private generator for the base seed each iteration
    draws, so iterating it (an extra evaluation pass) leaves the global random stream alone.
    Workers are started afresh each epoch (not persistent): every epoch then draws its base seed from
    `generator` as the single-process loader does, so `--workers` changes no batch order, and a resumed
    run continues the uninterrupted one's stream.
    """
    sampler_cls = torch.utils.data.RandomSampler if shuffle else torch.utils.data.SequentialSampler
    sampler = sampler_cls(dataset, generator=generator) if shuffle else sampler_cls(dataset)
    batches = torch.utils.data.BatchSampler(sampler, batch_size, drop_last=False)
    pin = device is not None and torch.device(device).type == "cuda"
    return torch.utils.data.DataLoader(
        dataset, sampler=batches, batch_size=None, num_workers=workers, pin_memory=pin,
        generator=generator if generator is not None else torch.Generator().manual_seed(0)
    )


class ImageRows(torch.utils.data.Dataset):
    """The rows and boxes of an image dataset, for epochs that fetch what they need of the images
    themselves (the successor's agent epochs read feature maps from a FrozenEncoder): a 1-D index
    gives (rows (B,) int64, targets (B, 4)). `dataset` is the image dataset; `targets` and the data
    fingerprint are its own."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.targets = dataset.targets

    def fingerprint_parts(self):
        return self.dataset.fingerprint_parts()

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        rows = torch.as_tensor(index, dtype=torch.long)
        return rows, self.targets[rows].clone()


def split_train_val(count, fraction, seed):
    """Seeded disjoint (train, val) index tensors; val holds round(fraction * count) items."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    val_count = int(round(fraction * count))
    if fraction > 0 and not 0 < val_count < count:
        raise DataError(f"--val_split {fraction} leaves no training or no validation images out of {count}")
    return order[val_count:].sort().values, order[:val_count].sort().values


def build_loaders(args, device, shuffle_generator):
    """Loaders of a training run: {"train", "val" (None without --val_split), "test"}."""
    test_set = ClutteredMNIST(args.datapath, args.digit, "test")
    train_set = ClutteredMNIST(args.datapath, args.digit, "train")
    val_set = None
    if args.val_split > 0:
        train_idx, val_idx = split_train_val(len(train_set), args.val_split, args.seed)
        val_set = ClutteredMNIST(args.datapath, args.digit, "train", indices=val_idx)
        train_set = ClutteredMNIST(args.datapath, args.digit, "train", indices=train_idx)
    loader = lambda dataset, shuffle: make_loader(dataset, args.batch_size, shuffle, shuffle_generator if shuffle else None,
                                                  args.workers, device)
    sizes = f"{len(train_set)} train" + (f" / {len(val_set)} val" if val_set else "") + f" / {len(test_set)} test"
    print(f"data: digit {args.digit}, {sizes} images from {args.datapath}")
    return {"train": loader(train_set, True), "val": loader(val_set, False) if val_set else None, "test": loader(test_set, False)}
