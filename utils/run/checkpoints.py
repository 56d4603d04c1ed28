"""Checkpoints in the original format, written atomically and loaded without pickled objects."""

import errno
import os

import numpy as np
import torch

from utils.errors import CheckpointError
from utils.run.files import write_atomically
from utils.run.signals import interrupts_deferred

# numpy scalars (e.g. an `acc` computed with numpy, as original checkpoints may hold) are plain
# data; allowing them keeps weights_only loading (no code runs) for such files.
NUMPY_SCALAR_GLOBALS = [np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar, np.dtype,
                        type(np.dtype(np.float64)), type(np.dtype(np.float32)), type(np.dtype(np.int64))]


# recorded in a net's checkpoints: RoIAlign and RoIPool nets have state_dicts of identical shapes
POOLING_KEYS = ("pooling_mode", "pooling_size")



def save_checkpoint(state, path):
    """Writes `state` (a dict of plain types and tensors) atomically: a run killed at any moment
    leaves either the previous file or the new one, never a truncated one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(stream):
        try:
            torch.save(state, stream)
        except RuntimeError as error:  # torch reports a failed write (a full disk, a file-size limit) as its own error
            if "PytorchStreamWriter" not in str(error) and "inline_container" not in str(error):
                raise  # not a write failure (e.g. memory): as it is
            reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
            raise OSError(errno.EIO, f"the checkpoint could not be written (a full disk or a file-size limit?): {reason}") from None

    with interrupts_deferred():  # Ctrl-C (even twice) while a checkpoint is written stops the run after the write
        write_atomically(path, write)


def load_checkpoint(path, required=("state_dict",)):
    """Loads a checkpoint dict on the CPU with `weights_only=True` (no code runs on load)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(NUMPY_SCALAR_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt, truncated or not a checkpoint ({reason[:200]})") from None
    if not isinstance(state, dict) or any(key not in state for key in required):
        raise CheckpointError(f"{path} is not a checkpoint of this project (expected a dict with keys {list(required)})")
    return state


def load_weights(module, path, what="model"):
    """Loads a checkpoint's `state_dict` into `module` strictly; mismatches give one clear line."""
    state = load_checkpoint(path)
    for key in POOLING_KEYS:  # checkpoints without the key (the original's) load as before
        if key in state and hasattr(module, key) and state[key] != getattr(module, key):
            raise CheckpointError(f"{path} was trained with --{key} {state[key]}; this run has --{key} {getattr(module, key)} "
                                  f"(use the same --{key})")
    if not isinstance(state["state_dict"], dict):
        raise CheckpointError(f"{path}: its state_dict is a {type(state['state_dict']).__name__}, not a dict of tensors; "
                              f"not a checkpoint of this project")
    try:
        module.load_state_dict(state["state_dict"], strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise CheckpointError(
            f"{path} does not fit this {what} (trained with another configuration, e.g. --pooling_size, "
            f"--pooling_mode, --hidden_size or --num_act?): {detail[:300]}"
        ) from None
    return state


def model_checkpoint(epoch, model, acc, **extra):
    """The original's checkpoint dict `{'epoch', 'state_dict', 'acc'}` plus optional plain extras; a net's
    checkpoint also records its `pooling_mode` and `pooling_size`."""
    state = {"epoch": int(epoch), "state_dict": model.state_dict(), "acc": float(acc)}
    state.update({key: getattr(model, key) for key in POOLING_KEYS if hasattr(model, key)})
    state.update(extra)
    return state


def resolve_checkpoint(path, saveroot, flag):
    """A checkpoint flag's path as given when it exists, else relative to --saveroot; None for ''."""
    if not path:
        return None
    for candidate in (path, os.path.join(saveroot, path)):
        if os.path.isfile(candidate):
            return candidate
    raise CheckpointError(f"{flag} {path}: not found (looked at {path} and {os.path.join(saveroot, path)})")
