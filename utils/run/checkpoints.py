"""Checkpoints in the original format, written atomically and loaded without pickled objects.

Inside `background_writes()` (the epoch loop) `save_checkpoint` copies the state and returns; one
thread writes the copies strictly in the order they were saved, none dropped (so a resume state
never lands before the checkpoints of its epoch). A run killed at any moment leaves complete files:
the writes are atomic.
"""

import contextlib
import errno
import os
import threading

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
    leaves either the previous file or the new one, never a truncated one. Inside
    `background_writes()` a copy of `state` is written by the writer thread."""
    if _writer["current"] is not None and threading.current_thread() is threading.main_thread():
        _writer["current"].submit(state, path)
        return
    write_checkpoint(state, path)


def write_checkpoint(state, path):
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


def snapshot(value, reuse=None):
    """A copy of a checkpoint's state that later training steps cannot change: tensors copied on
    their device (so the file holds what it held before), into the tensors of an earlier copy
    `reuse` where they fit (fresh memory is slow to touch, in a VM above all); containers copied with
    their type (a state_dict keeps its `_metadata`); other values as they are (numbers, strings)."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        fits = (isinstance(reuse, torch.Tensor) and reuse.shape == value.shape and reuse.dtype == value.dtype
                and reuse.device == value.device and reuse.is_contiguous() and value.layout == torch.strided)
        return reuse.copy_(value) if fits else value.clone()
    if isinstance(value, dict):
        reuse = reuse if isinstance(reuse, dict) else {}
        copy = value.copy()
        for key in copy:
            copy[key] = snapshot(copy[key], reuse.get(key))
        if hasattr(value, "_metadata"):
            copy._metadata = value._metadata.copy()
        return copy
    if type(value) in (list, tuple):
        reuse = reuse if type(reuse) is type(value) and len(reuse) == len(value) else [None] * len(value)
        return type(value)(snapshot(item, old) for item, old in zip(value, reuse))
    return value


class CheckpointWriter:
    """One thread that writes checkpoints strictly in the order they were submitted, none dropped, so
    when a file lands everything submitted before it has landed (a resume state never lands before
    the checkpoints of its epoch). A file submitted while its previous copy still waits makes the
    main thread wait for the writer to take that copy (at most one copy per file waits). Each file
    keeps the copy it last wrote, whose memory its next copy reuses. A failed write is raised in the
    main thread by the next `submit` or by `wait`."""

    def __init__(self):
        self.waiting = {}  # path -> state, in submission order (dicts keep it)
        self.written = {}  # path -> the state last written: memory for its next copy
        self.writing = None
        self.error = None
        self.closed = False
        self.lock = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
        self.thread.start()

    def submit(self, state, path):
        """Copies `state` and queues it behind everything submitted before. Ctrl-C waits until the
        copy is queued (a copy half made, or taken out and not put back, would be lost)."""
        self._raise_error()
        with interrupts_deferred(), self.lock:
            while path in self.waiting and self.error is None:
                self.lock.wait()
            self._raise_error()
            self.waiting[path] = snapshot(state, self.written.pop(path, None))  # the writer never reads a half-made copy
            self.lock.notify_all()

    def _run(self):
        while True:
            with self.lock:
                while not self.waiting and not self.closed:
                    self.lock.wait()
                if not self.waiting:
                    return
                path = next(iter(self.waiting))
                state = self.waiting.pop(path)
                self.writing = path
            try:
                if self.error is None:
                    write_checkpoint(state, path)
            except BaseException as error:  # kept for the main thread; later writes are dropped
                self.error = error
            finally:
                with self.lock:
                    self.writing = None
                    self.written.setdefault(path, state)
                    self.lock.notify_all()

    def wait(self):
        """Returns when every submitted checkpoint is on disk; raises a failed write's error."""
        with self.lock:
            while self.waiting or self.writing is not None:
                self.lock.wait()
        self._raise_error()

    def close(self):
        with self.lock:
            self.closed = True
            self.lock.notify_all()
        self.thread.join()

    def _raise_error(self):
        if self.error is not None:
            error, self.error = self.error, None
            with self.lock:
                self.waiting.clear()
            raise error


_writer = {"current": None}


@contextlib.contextmanager
def background_writes():
    """Within the block `save_checkpoint` hands its writes to a CheckpointWriter. When the block ends,
    also by an error or Ctrl-C, every checkpoint submitted is on disk (Ctrl-C waits, as for a write in
    the main thread); a failed write raises its error there, unless another error is already on its way."""
    if _writer["current"] is not None:  # nested: the outer block's writer serves
        yield
        return
    writer = _writer["current"] = CheckpointWriter()
    try:
        yield
    except BaseException:
        _writer["current"] = None
        with interrupts_deferred(), contextlib.suppress(Exception):
            writer.wait()
        raise
    else:
        _writer["current"] = None
        with interrupts_deferred():
            writer.wait()
    finally:
        _writer["current"] = None
        writer.close()


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
