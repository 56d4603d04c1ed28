"""Resume state: everything a run needs to continue exactly where its last epoch ended.

Written atomically after every epoch to `<run>/resume.pth.tar` with plain types only, so it
loads with `weights_only=True`. A run killed at any moment resumes from the end of its last
complete epoch with the same random streams, so it ends with the uninterrupted run's metrics.
"""

import collections
import os
import random

import numpy as np
import torch

from utils.errors import CheckpointError
from utils.run.checkpoints import load_checkpoint, save_checkpoint

RESUME_FILE = "resume.pth.tar"
# run flags that may change between an interrupted run and its resumption: paths may move (the data is
# compared by its fingerprint, utils/run/folder.py), what changes results may not; each script adds its own
FREE_TO_CHANGE = {"resume", "epochs", "workers", "device", "wandb_mode", "log_interval", "log_all", "evaluate", "overwrite",
                  "datapath", "saveroot", "savename"}


def rng_state(generators):
    """Python, numpy, torch (CPU and CUDA) global states plus the named torch.Generators."""
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: generator.get_state() for name, generator in generators.items()},
    }


def restore_rng_state(state, generators):
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, generator in generators.items():
        generator.set_state(state["generators"][name])


def scheduler_state(scheduler):
    """A scheduler's state with MultiStepLR's Counter as a plain dict (weights_only loads no Counter)."""
    state = dict(scheduler.state_dict())
    if isinstance(state.get("milestones"), collections.Counter):
        state["milestones"] = dict(state["milestones"])
    return state


def restore_scheduler(scheduler, state):
    scheduler.load_state_dict(state)
    if isinstance(getattr(scheduler, "milestones", None), dict):
        scheduler.milestones = collections.Counter(scheduler.milestones)


def save_resume(run_dir, epoch, args, modules, optimizers, schedulers, generators, progress):
    """Writes the state after `epoch` (completed). progress: plain dict (best metric, patience, wandb id)."""
    state = {
        "epoch": int(epoch),
        "args": vars(args),
        "modules": {name: module.state_dict() for name, module in modules.items()},
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items() if opt is not None},
        "schedulers": {name: scheduler_state(s) for name, s in schedulers.items() if s is not None},
        "rng": rng_state(generators),
        "progress": progress,
    }
    save_checkpoint(state, os.path.join(run_dir, RESUME_FILE))


def read_resume(run_dir, args, free_flags=()):
    """The resume state of a run folder, or None when there is none; refuses changed flags other than
    FREE_TO_CHANGE and the script's `free_flags`."""
    path = os.path.join(run_dir, RESUME_FILE)
    if not os.path.isfile(path):
        return None
    state = load_checkpoint(path, required=("epoch", "args", "modules", "optimizers", "schedulers", "rng", "progress"))
    changed = {k: (v, vars(args).get(k)) for k, v in state["args"].items() if k not in FREE_TO_CHANGE | set(free_flags) and vars(args).get(k) != v}
    if changed:
        details = ", ".join(f"--{k} {old} -> {new}" for k, (old, new) in changed.items())
        raise CheckpointError(f"{path} was written with other flags ({details}); resume with the original flags")
    if not isinstance(state["progress"], dict) or "best" not in state["progress"]:
        raise CheckpointError(f"{path} holds no progress record (its best metric is missing), so the run cannot continue; "
                              "start afresh with --overwrite 1 (the old run is kept beside it)")
    return state


def apply_resume(state, modules, optimizers, schedulers, generators):
    """Loads a resume state into the run's objects; returns (next epoch, progress dict)."""
    try:
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name], strict=True)
        for name, optimizer in optimizers.items():
            if optimizer is not None:
                optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in schedulers.items():
            if scheduler is not None:
                restore_scheduler(scheduler, state["schedulers"][name])
        restore_rng_state(state["rng"], generators)
    except (KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"the resume state does not fit this run ({str(error).splitlines()[0][:200]})") from None
    return state["epoch"] + 1, dict(state["progress"])
