"""Metric logging to stdout, a JSON-lines file in the run folder and wandb (never prompts)."""

import contextlib
import json
import math
import netrc
import os
import sys
from dataclasses import dataclass

from utils.run.files import append_line, write_atomically

WANDB_MODES = ("online", "offline", "disabled")


def wandb_logged_in():
    """True when an API key is available without asking: $WANDB_API_KEY or ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def resolve_wandb_mode(flag=None):
    """A flag wins, then $WANDB_MODE, then online when logged in, else offline."""
    if flag:
        return flag
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in WANDB_MODES:
        return env
    if env == "dryrun":
        return "offline"
    return "online" if wandb_logged_in() else "offline"


# how long a run waits for wandb to start (online: to reach its server) before it logs offline instead;
# wandb's own default is 90 s, which a logged-in user on a compute node without network waits on every run
WANDB_INIT_TIMEOUT_S = 10.0


def wandb_settings(wandb):
    """wandb's settings for a run: no console capture, and the start bounded by $WANDB_INIT_TIMEOUT
    (seconds; default WANDB_INIT_TIMEOUT_S)."""
    try:
        timeout = float(os.environ.get("WANDB_INIT_TIMEOUT", WANDB_INIT_TIMEOUT_S))
    except ValueError:
        timeout = WANDB_INIT_TIMEOUT_S
    return wandb.Settings(console="off", init_timeout=timeout)


def warn(message):
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


class Histogram:
    """Values to log as a wandb histogram (cheap enough for every epoch; not written to metrics.jsonl)."""

    def __init__(self, values):
        self.values = values.numpy().ravel() if hasattr(values, "numpy") else values


class RunLogger:
    """Logs metric dicts to `<run_dir>/metrics.jsonl`, wandb, and one summary line per epoch."""

    def __init__(self, run_dir, config, project, mode=None, job_type=None, run_id=None, selection=()):
        self.run_dir = run_dir
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")
        self.mode = resolve_wandb_mode(mode)
        self.run = None
        self.selection = tuple(selection)  # metrics whose wandb summary keeps the best epoch (what sweeps optimise)
        if self.mode != "disabled":
            self.run = self._init_wandb(config, project, job_type, run_id)
        self.run_id = self.run.id if self.run is not None else run_id

    def _init_wandb(self, config, project, job_type, run_id):
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb
        except ImportError:
            warn("wandb is not installed; logging to stdout and metrics.jsonl only")
            self.mode = "disabled"
            return None
        kwargs = dict(project=project, config=config, dir=self.run_dir, job_type=job_type, id=run_id, resume="allow" if run_id else None)
        failures = []
        for mode in (self.mode, "offline") if self.mode == "online" else (self.mode,):
            try:
                run = wandb.init(mode=mode, settings=wandb_settings(wandb), reinit="finish_previous", **kwargs)
                if mode != self.mode:  # one line for the fallback, with the reason
                    warn(f"wandb {self.mode} failed; logging offline instead ({failures[0]}; sync later with "
                         f"`wandb sync {self.run_dir}/wandb`)")
                self.mode = mode
                for name in self.selection:
                    run.define_metric(name, summary="max")
                return run
            except Exception as error:  # wandb raises its own types for network, auth, timeout and settings errors
                failures.append(f"{mode}: {str(error).splitlines()[0][:160] if str(error) else type(error).__name__}")
        warn(f"wandb disabled for this run ({'; '.join(failures)}); metrics go to stdout and metrics.jsonl")
        self.mode = "disabled"
        return None

    def drop_epochs_from(self, epoch):
        """Forgets metrics.jsonl records of epochs >= `epoch` (a resumed run logs them again) and
        unreadable lines (a record cut short by a full disk); rewrites the file atomically."""
        if not os.path.isfile(self.metrics_path):
            return
        with open(self.metrics_path, "rb") as stream:
            lines = stream.read().decode("utf-8", errors="replace").splitlines()
        kept, unreadable = [], []
        for number, line in enumerate(lines, 1):
            epoch_of_line = record_epoch(line)
            if epoch_of_line is None:
                unreadable += [number] if line.strip() else []
            elif epoch_of_line < epoch:
                kept.append(line + "\n")
        if unreadable:
            warn(f"{self.metrics_path}: dropped {len(unreadable)} unreadable line(s) (line {', '.join(map(str, unreadable[:5]))}; "
                 f"a record cut short, e.g. by a full disk)")
        if len(kept) != len(lines):
            write_atomically(self.metrics_path, lambda stream: stream.write("".join(kept).encode()))

    def log(self, metrics, step):
        """metrics: name -> float (the original's names), or the path of a PNG (logged to wandb as an image).

        A `Histogram` goes to wandb as a histogram; other objects (wandb tables) go to wandb only.
        """
        record = {"epoch": step}
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                record[name] = float(value)
            elif isinstance(value, str):
                record[name] = value
        append_line(self.metrics_path, json.dumps(record))
        if self.run is not None:
            import wandb

            with self.wandb_guarded():
                images = {k: wandb.Image(v) for k, v in metrics.items() if isinstance(v, str) and v.endswith(".png")}
                histograms = {k: wandb.Histogram(v.values) for k, v in metrics.items() if isinstance(v, Histogram)}
                self.run.log({**metrics, **images, **histograms}, step=step)

    def table(self, name, rows, step):
        """Logs a list of dicts (same keys) as a wandb Table."""
        if self.run is None or not rows:
            return
        import wandb

        columns = list(rows[0].keys())
        with self.wandb_guarded():
            self.run.log({name: wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows])}, step=step)

    def finish(self):
        if self.run is not None:
            with self.wandb_guarded():
                self.run.finish()
            self.run = None

    @contextlib.contextmanager
    def wandb_guarded(self):
        """Logging never stops a run: a wandb failure (a full or unwritable folder, a lost service) turns
        wandb off with one line; metrics.jsonl goes on."""
        try:
            yield
        except Exception as error:  # wandb raises its own types
            warn(f"wandb failed ({str(error).splitlines()[0][:160] if str(error) else type(error).__name__}); "
                 f"it is off for the rest of the run, metrics go on to {self.metrics_path}")
            self.run, self.mode = None, "disabled"


def record_epoch(line):
    """The epoch of one metrics.jsonl line, or None when the line is not a readable record."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    epoch = record.get("epoch") if isinstance(record, dict) else None
    return epoch if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) else None


def format_metrics(metrics):
    """'Train Total Loss 0.123 | Train Ord Acc Inst 61.20 | ...' for scalar metrics."""
    parts = []
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{name} {value:.4g}" if abs(value) < 1e-2 or "loss" in name.lower() else f"{name} {value:.2f}")
    return " | ".join(parts)


def read_records(metrics_path):
    """The readable records of a metrics.jsonl file, in order (dicts with a numeric `epoch`)."""
    records = []
    try:
        with open(metrics_path, "rb") as stream:
            lines = stream.read().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        if record_epoch(line) is not None:
            records.append(json.loads(line))
    return records


@dataclass(frozen=True)
class EpochLine:
    """What a script's one line per epoch shows besides the epoch, its selection metric, the learning
    rate and the time: the main figure on the training and test splits (`train`, `test`, shown as
    `label`) and the main `loss`. `--log_all 1` prints every figure instead."""

    label: str
    train: str
    test: str
    loss: str


def duration(seconds):
    """'42 s', '3m 05s', '2h 14m'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def number(value):
    """A figure in at most 10 characters: 93.41, 0.1234, 0.001234, -2250, -1.317e+04; "-" when missing."""
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "-"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude < 1e-2 or magnitude >= 1e3:
        return f"{value:.4g}"
    return f"{value:.2f}" if magnitude >= 1 else f"{value:.4f}"


def epoch_line(epoch, epochs, metrics, selection, improved, line, seconds, eta_seconds):
    """The epoch's line (about 100-140 characters): epoch, the selection metric and whether it is a new
    best, the main figure on train and test, the main loss, the learning rate, the epoch's wall time
    and the time the remaining epochs would take."""
    parts = [f"epoch {epoch:>{len(str(epochs - 1))}} of {epochs}",
             f"{selection} {number(metrics.get(selection))}{' best' if improved else ''}",
             f"{line.label} train {number(metrics.get(line.train))} test {number(metrics.get(line.test))}",
             f"loss {number(metrics.get(line.loss))}", f"lr {metrics.get('learning rate', float('nan')):.3g}",
             f"{seconds:.1f} s", f"ETA {duration(eta_seconds)}"]
    return " | ".join(parts)
