"""utils/data/loaders.py: make_loader (seeded, covers every image) and build_loaders (--val_split keeps the
validation images out of training)."""

import torch
from conftest import write_synthetic_split

from utils.data.datasets import ClutteredMNIST
from utils.data.loaders import build_loaders, make_loader
from utils.method2021.flags import parse_args


def test_loader_is_seeded_and_covers_everything(synthetic_data):
    dataset = ClutteredMNIST(synthetic_data, 4, "train")
    orders = []
    for _ in range(2):
        loader = make_loader(dataset, 32, True, torch.Generator().manual_seed(0))
        batches = list(loader)
        assert [b[0].shape[0] for b in batches] == [32, 32, 32]
        orders.append(torch.cat([b[1] for b in batches]))
    assert torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[0], dataset.targets)
    assert torch.equal(orders[0].sort(dim=0).values, dataset.targets.sort(dim=0).values)


def test_val_split_never_reaches_training_batches(tmp_path):
    datapath = str(tmp_path)
    write_synthetic_split(datapath, 4, "train", 50, seed=0)
    write_synthetic_split(datapath, 4, "test", 10, seed=1)
    args = parse_args(["--datapath", datapath, "--val_split", "0.2", "--batch_size", "7", "--seed", "3"])
    loaders = build_loaders(args, "cpu", torch.Generator().manual_seed(0))
    as_keys = lambda images: {bytes(image.numpy().tobytes()) for image in images}
    val_keys = as_keys(torch.cat([images for images, _ in loaders["val"]]))
    seen = set()
    for _ in range(3):  # several epochs, several shuffles
        for images, _ in loaders["train"]:
            seen |= as_keys(images)
    assert len(val_keys) == 10 and len(seen) == 40 and not (seen & val_keys)
