"""Run folders: one run of one script per folder, never replaced or mixed silently.

A run lives in `<saveroot>/<savename>`: checkpoints (`*.pth.tar`), `metrics.jsonl` and `run.json`
(the script that owns the folder and a fingerprint of the run's data). A training run
- starts fresh only in a folder that holds no run files (`metrics.jsonl`, `*.pth.tar`);
- continues the run of the same script with `--resume 1`;
- replaces a run with `--overwrite 1`, which moves the old run into the sibling folder
  `<savename>.old-<timestamp>` (nothing is deleted);
- holds a lock on `.run.lock` (fcntl.flock) for its lifetime, so a second run in the folder is refused;
- removes the temporaries (`.<name>.<random>.tmp`) that a killed run's atomic writes left behind.
A run that fails or is interrupted before it wrote any run file leaves no trace: a folder it created
is removed again and an old run it moved aside is moved back.
"""

import datetime
import fcntl
import json
import os
import shutil

from utils.errors import RunFolderError
from utils.run.files import ensure_writable_folder, file_sha256, is_temporary, write_atomically

LOCK_FILE = ".run.lock"
OWNER_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_SUFFIX = ".pth.tar"
MODES = ("fresh", "resume", "overwrite", "evaluate")



def run_files(path):
    """Sorted names of the files that make `path` a run: metrics.jsonl and checkpoints."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if name == METRICS_FILE or name.endswith(CHECKPOINT_SUFFIX))


def read_owner(path):
    """The run folder's run.json as a dict ({} when there is none or it is unreadable)."""
    try:
        with open(os.path.join(path, OWNER_FILE)) as stream:
            record = json.load(stream)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_owner(path, record):
    text = json.dumps(record, indent=2) + "\n"
    write_atomically(os.path.join(path, OWNER_FILE), lambda stream: stream.write(text.encode()))


def record_selection(path, selection):
    """Records in run.json the metric that chooses the run's best checkpoint (learning curves and
    tools/plot_runs.py mark it)."""
    record = read_owner(path)
    if record.get("selection") != selection:
        write_owner(path, {**record, "selection": selection})


def record_variant(path, name, value):
    """Records in run.json a setting that labels what the run reproduces (e.g. adaptation's
    `target_norm`), under "variants", so summaries and readers see it without the flags."""
    record = read_owner(path)
    variants = record.get("variants", {})
    if variants.get(name) != value:
        write_owner(path, {**record, "variants": {**variants, name: value}})


def check_inputs(path, inputs, resuming):
    """Records in run.json the checkpoints a run starts from ({flag: file}, by sha256); a resumed run
    must start from the same ones (a moved or copied file is fine, another one is refused)."""
    record = read_owner(path)
    current = {flag: {"path": os.path.abspath(file), "sha256": file_sha256(file)} for flag, file in inputs.items() if file}
    recorded = record.get("inputs") or {}
    if resuming:
        for flag, old in recorded.items():
            new = current.get(flag)
            if new is None or new["sha256"] != old["sha256"]:
                given = f"{new['path']} (sha256 {new['sha256'][:12]})" if new else "none"
                raise RunFolderError(f"{flag}: the run in {path} started from {old['path']} (sha256 {old['sha256'][:12]}), this resume "
                                     f"gives {given}; resume with the checkpoint the run started from")
    if current != recorded:
        write_owner(path, {**record, "inputs": {**recorded, **current}})


def check_data_fingerprint(path, fingerprint, resuming):
    """Records the fingerprint of a run's data in run.json; a resumed run must see the same data
    (the --datapath folder may move or be a copy)."""
    record = read_owner(path)
    recorded = record.get("data")
    if resuming and recorded is not None and recorded != fingerprint:
        raise RunFolderError(f"the data in --datapath differs from the data the run in {path} was trained on "
                             f"(fingerprint {fingerprint} != {recorded}); resume with the same data")
    if recorded != fingerprint:
        write_owner(path, {**record, "data": fingerprint})


def aside_path(path):
    """A free sibling name `<path>.old-<timestamp>` for a replaced run."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, count = f"{path}.old-{stamp}", 1
    while os.path.exists(candidate):
        count += 1
        candidate = f"{path}.old-{stamp}-{count}"
    return candidate


class RunFolder:
    """`with RunFolder(path, script, mode) as run_dir:` checks, locks and claims a run folder.

    mode: "fresh" (refuses a folder holding a run), "resume" (refuses another script's run),
    "overwrite" (moves a run aside) or "evaluate" (reads the run: refuses another script's run).
    """

    def __init__(self, path, script, mode):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.path, self.script, self.mode = os.path.normpath(path), script, mode
        self.created = False
        self.wrote_owner = False
        self.moved_to = None
        self.lock = None
        self.found = set()

    def __enter__(self):
        self.created = not os.path.isdir(self.path)
        if self.mode == "evaluate" and self.created:  # --evaluate reads a run; it never creates one
            raise RunFolderError(f"--evaluate: there is no run in {self.path} (no such folder); check --saveroot and --savename")
        try:
            ensure_writable_folder(self.path)
        except OSError as error:
            raise OSError(f"cannot write to the run folder {self.path}: {error.strerror or error}") from None
        lock_path = os.path.join(self.path, LOCK_FILE)
        lock_existed = os.path.exists(lock_path)
        self.acquire_lock()
        try:
            self.remove_temporaries()
            self.found = set(os.listdir(self.path))  # what a failed start must leave as it was
            self.check_and_claim()
        except BaseException:
            self.release()
            if not lock_existed and os.path.exists(lock_path):  # a refused start leaves the folder as it found it
                os.remove(lock_path)
            if self.created and not os.listdir(self.path):
                os.rmdir(self.path)
            raise
        return self.path

    def __exit__(self, kind, error, traceback):
        try:
            if kind is not None and not run_files(self.path):
                self.undo()
            elif kind is not None and self.moved_to:
                print(f"the replaced run stays in {self.moved_to}")
        finally:
            self.release()
        return False

    def acquire_lock(self):
        path = os.path.join(self.path, LOCK_FILE)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(handle, 32).decode(errors="replace").strip()
            os.close(handle)
            raise RunFolderError(f"another run{f' (process {holder})' if holder else ''} is using {self.path}; "
                                 f"wait for it to end or choose another --savename") from None
        except OSError as error:  # e.g. a network file system without flock: run, but unguarded
            print(f"WARNING: cannot lock {path} ({error.strerror}); a concurrent run in this folder would not be noticed")
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        self.lock = handle

    def release(self):
        if self.lock is not None:
            os.close(self.lock)  # closing the descriptor releases the flock
            self.lock = None

    def remove_temporaries(self):
        """Temporaries of atomic writes left by a killed run (the lock proves no run writes them now)."""
        stale = [name for name in os.listdir(self.path) if is_temporary(name) and os.path.isfile(os.path.join(self.path, name))]
        for name in stale:
            os.remove(os.path.join(self.path, name))
        if stale:
            print(f"removed {len(stale)} temporary file(s) left by a killed run in {self.path}: {', '.join(sorted(stale))}")

    def check_and_claim(self):
        owner = read_owner(self.path).get("script")
        other = owner if owner and owner != self.script else None
        files = run_files(self.path)
        if self.mode == "evaluate":
            if other:
                raise RunFolderError(f"{self.path} holds a run of {other}, not of {self.script}; evaluate it with {other}")
            if not any(name.endswith(CHECKPOINT_SUFFIX) for name in files):
                raise RunFolderError(f"--evaluate: {self.path} holds no checkpoint to evaluate (the run has not finished an epoch)")
            return
        if self.mode == "resume" and files and other:
            raise RunFolderError(f"{self.path} holds a run of {other}; --resume 1 continues only a run of {self.script} "
                                 f"(choose another --savename)")
        if self.mode == "fresh" and files:
            listing = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
            raise RunFolderError(f"{self.path} already holds a run{f' of {owner}' if owner else ''} ({listing}); continue it with "
                                 f"--resume 1, replace it with --overwrite 1 (the old run is moved aside), or choose another --savename")
        if self.mode == "overwrite" and files:
            self.move_aside()
        if self.mode != "resume" or owner != self.script:
            write_owner(self.path, {"script": self.script, "created": datetime.datetime.now().astimezone().isoformat()})
            self.wrote_owner = True

    def move_aside(self):
        """Moves everything but the lock into `<path>.old-<timestamp>`."""
        target = aside_path(self.path)
        os.makedirs(target)
        for name in os.listdir(self.path):
            if name != LOCK_FILE:
                os.replace(os.path.join(self.path, name), os.path.join(target, name))
        self.moved_to = target
        self.found = {LOCK_FILE}  # from here on everything else in the folder is the new run's
        print(f"--overwrite 1: the old run in {self.path} is now in {target}")

    def undo(self):
        """After a failed start that wrote no run file: restore the folder as it was (the records the
        start wrote, e.g. sample_inds.json, go too)."""
        if self.wrote_owner and os.path.isfile(os.path.join(self.path, OWNER_FILE)):
            os.remove(os.path.join(self.path, OWNER_FILE))
        for name in set(os.listdir(self.path)) - self.found - {LOCK_FILE, OWNER_FILE}:
            path = os.path.join(self.path, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)  # e.g. the wandb/ folder of the failed start
            else:
                os.remove(path)
        leftovers = [name for name in os.listdir(self.path) if name != LOCK_FILE]
        if self.moved_to and not leftovers:
            for name in os.listdir(self.moved_to):
                os.replace(os.path.join(self.moved_to, name), os.path.join(self.path, name))
            os.rmdir(self.moved_to)
            print(f"the run that --overwrite 1 moved aside is back in {self.path}")
        elif self.moved_to:
            print(f"the replaced run stays in {self.moved_to}")
        if self.created and not leftovers:
            os.remove(os.path.join(self.path, LOCK_FILE))
            os.rmdir(self.path)
