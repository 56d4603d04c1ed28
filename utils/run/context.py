"""What every training script sets up the same way: seeds, device, the run's random streams, its
loaders, its resume state and its logger (`RunContext`)."""

import hashlib
import random

import numpy as np
import torch

from utils.run.folder import check_data_fingerprint
from utils.run.logging import RunLogger
from utils.run.resume import read_resume
from utils.run.speed import set_deterministic

# offsets from --seed of a run's random streams: "shuffle" (CPU, batch order), "sampler" (training
# draws), "eval" (evaluation draws); "greedy" (the --greedy 1 pass) and "summary" (end-of-run figures)
# are seeded afresh at each use, so they move no other stream and `--evaluate` reproduces them
STREAM_SEEDS = {"shuffle": 0, "sampler": 1, "eval": 2, "greedy": 3, "summary": 4}


def seed_everything(seed):
    """Seeds Python's, numpy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(choice="auto"):
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def make_generator(device, seed):
    """A torch.Generator on `device` seeded with `seed` (samplers take it explicitly)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def data_fingerprint(loaders):
    """sha256 (first 16 hex digits) of the images and targets a run's loaders serve, in split order
    (datasets with `fingerprint_parts()`: arrays or bytes): a resumed run may read its data from
    another folder, but not other data."""
    digest = hashlib.sha256()
    for name in ("train", "val", "test"):
        if loaders.get(name) is not None:
            dataset = loaders[name].dataset
            digest.update(name.encode())
            for part in dataset.fingerprint_parts():
                digest.update(part)
    return digest.hexdigest()[:16]


class RunContext:
    """What every training script sets up the same way: device, seeded generators, loaders
    (`loader_builder(args, device, shuffle_generator)` -> {"train", "val" or None, "test", ...}), the
    resume state (with --resume 1; `free_flags`: the script's flags that may change on resume besides
    the run flags) and the logger (continuing the resumed wandb run; `selection`: the metrics whose
    best epoch a wandb summary keeps)."""

    def __init__(self, args, run_dir, job_type, loader_builder, selection=(), free_flags=()):
        self.args = args
        self.run_dir = run_dir
        set_deterministic(args.deterministic)
        self.device = pick_device(args.device)
        seed_everything(args.seed)
        print(f"run folder {run_dir} | device {self.device} | args {vars(args)}")
        # Training draws (boxes, actions, pairs) and evaluation draws have separate streams, so a
        # flag that only adds an evaluation (e.g. --greedy 1) leaves the training trajectory unchanged.
        self.generators = {"shuffle": torch.Generator().manual_seed(args.seed + STREAM_SEEDS["shuffle"]),
                           "sampler": self.fresh_generator("sampler"), "eval": self.fresh_generator("eval")}
        self.loaders = loader_builder(args, self.device, self.generators["shuffle"])
        self.resume = read_resume(run_dir, args, free_flags) if args.resume and not args.evaluate else None
        if not args.evaluate:
            check_data_fingerprint(run_dir, data_fingerprint(self.loaders), resuming=self.resume is not None)
        if args.resume and self.resume is None and not args.evaluate:
            print(f"--resume 1: no resume state in {run_dir}; starting from scratch")
        run_id = self.resume["progress"].get("wandb_id") if self.resume else None
        self.logger = RunLogger(run_dir, vars(args), args.wandb_project, args.wandb_mode, job_type=job_type, run_id=run_id,
                                selection=selection)

    def fresh_generator(self, stream):
        """A new generator on the run's device for `stream` (a STREAM_SEEDS name), seeded from --seed."""
        return make_generator(self.device, self.args.seed + STREAM_SEEDS[stream])
