"""Mean, sd and a 95 % t-interval per figure over several run folders (seeds, sweep runs).

A run folder is what a training script writes to `<saveroot>/<savename>`: `metrics.jsonl` (one
record per training epoch, plus one per `--evaluate 1` call), the best checkpoint, optionally
`cross_digit.csv` (joint `--evaluate 1`) and `launch.json` (wall time, written by
`tools/run_seeds.py` and `tools/sweep_run.py`).
"""

import csv
import datetime
import json
import math
import os
import re

from utils.errors import CheckpointError, SummaryError
from utils.run.checkpoints import load_checkpoint
from utils.run.folder import read_owner

# kind -> (selection metric without its split prefix, best checkpoint file)
KINDS = {"pretrain": ("Ord Acc Inst", "best.pth.tar"), "joint": ("Loc Acc", "best_net.pth.tar")}
# wandb names a run's local folder (offline-)run-<local start time>-<run id>
WANDB_RUN_FOLDER = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-\w+$")
KIND_NAMES = {"pretrain": "ordinal pretraining", "joint": "joint training"}
PROTOCOLS = {
    "test": "best checkpoint chosen on the test split (the original's protocol): best-epoch test figures are optimistic",
    "validation": "best checkpoint chosen on a held-out validation split (--val_split): test figures at it are unbiased",
}
CROSS_DIGIT_COLUMNS = ("CorLoc sampled", "CorLoc greedy", "mean IoU sampled", "mean IoU greedy", "CorLoc whole image",
                       "CorLoc random policy")



def runs_parent(run_dirs):
    """The folder that holds the run folders (their deepest common parent): where the tools write."""
    return os.path.commonpath([os.path.dirname(os.path.abspath(d.rstrip(os.sep))) for d in run_dirs])


def read_jsonl(path):
    """The records of a metrics.jsonl file; SummaryError naming the first line that is not a record
    (bytes that are not UTF-8, not JSON, or a record without a numeric `epoch`)."""
    records = []
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, 1):
            try:
                line = raw.decode("utf-8")
                record = json.loads(line) if line.strip() else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise SummaryError(f"{path}, line {number}: not a JSON record (cut short or overwritten?)") from None
            if record is None:
                continue
            epoch = record.get("epoch") if isinstance(record, dict) else None
            if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
                raise SummaryError(f"{path}, line {number}: a record without a numeric epoch (not a metrics file of this project?)")
            records.append(record)
    return records


def read_cross_digit(path):
    """cross_digit.csv -> {digit: {column: float}} plus the training digit (or None)."""
    rows, trained_on = {}, None
    with open(path, newline="") as stream:
        for row in csv.DictReader(stream):
            try:
                digit = int(row["digit"])
                rows[digit] = {c: float(row[c]) for c in CROSS_DIGIT_COLUMNS if row.get(c) not in (None, "")}
            except (KeyError, ValueError):
                raise SummaryError(f"{path}: not a cross-digit table of train-joint.py --evaluate 1") from None
            if row.get("trained on"):
                trained_on = digit
    return rows, trained_on


def checkpoint_epoch(path):
    """The epoch stored in a best checkpoint, or None when it is missing or unreadable."""
    if not os.path.isfile(path):
        return None
    try:
        return int(load_checkpoint(path, required=("epoch",))["epoch"])
    except (CheckpointError, TypeError, ValueError):
        return None


def wall_seconds(run_dir):
    """(seconds, source): the launches recorded in `launch.json` (a resumed run: all its sessions), else
    an estimate from the start stamp of the run's first wandb folder to the last epoch's resume file,
    else (None, None)."""
    path = os.path.join(run_dir, "launch.json")
    if os.path.isfile(path):
        try:
            with open(path) as stream:
                sessions = json.load(stream)["sessions"]
            return sum(float(s["wall_s"]) for s in sessions), "launch.json"
        except (OSError, ValueError, KeyError, TypeError):
            raise SummaryError(f"{path}: unreadable launch record") from None
    end_file = os.path.join(run_dir, "resume.pth.tar")
    wandb_dir = os.path.join(run_dir, "wandb")
    if not os.path.isfile(end_file) or not os.path.isdir(wandb_dir):
        return None, None
    starts = [datetime.datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").timestamp()
              for match in map(WANDB_RUN_FOLDER.match, os.listdir(wandb_dir)) if match]
    elapsed = os.path.getmtime(end_file) - min(starts) if starts else -1
    return (elapsed, "wandb") if elapsed >= 0 else (None, None)


def run_kind(training):
    keys = set().union(*training) if training else set()
    if "Train Pol Loss" in keys or "Test Loc Acc" in keys:
        return "joint"
    if "Train Ord Acc Inst" in keys:
        return "pretrain"
    return None


def first_best_epoch(training, values):
    """Without a readable checkpoint: the first epoch with the highest value (the scripts save on a
    strict gain), or None when every value is missing."""
    finite = [(i, v) for i, v in enumerate(values) if not math.isnan(v)]
    if not finite:
        return None
    top = max(v for _, v in finite)
    return int(training[next(i for i, v in finite if v == top)]["epoch"])


def read_run(run_dir):
    """One run folder -> dict(kind, protocol, selection, best, last, best_epoch, at_best, evaluation,
    cross_digit, trained_on, wall_s). Training epochs are the records with a `learning rate`;
    `evaluation` is the last `--evaluate 1` record after them (or None)."""
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    cross_path = os.path.join(run_dir, "cross_digit.csv")
    if not os.path.isdir(run_dir):
        raise SummaryError(f"{run_dir}: no such run folder")
    if not os.path.isfile(metrics_path) and not os.path.isfile(cross_path):
        raise SummaryError(f"{run_dir}: neither metrics.jsonl nor cross_digit.csv (not a run folder of this project)")
    wall_s, wall_source = wall_seconds(run_dir)
    run = {"dir": run_dir, "kind": None, "protocol": None, "wall_s": wall_s, "wall_source": wall_source, "cross_digit": None,
           "trained_on": None, "script": read_owner(run_dir).get("script")}  # the script that owns the folder (run.json)
    if os.path.isfile(cross_path):
        run["cross_digit"], run["trained_on"] = read_cross_digit(cross_path)
    records = read_jsonl(metrics_path) if os.path.isfile(metrics_path) else []
    training = [r for r in records if "learning rate" in r]
    run["kind"] = run_kind(training)
    if run["kind"] is None:
        if records and run["cross_digit"] is None:
            raise SummaryError(f"{metrics_path}: no training epochs of ordinal pretraining or joint training")
        return run
    name, checkpoint = KINDS[run["kind"]]
    run["protocol"] = "validation" if any(k.startswith("Val ") for r in training for k in r) else "test"
    selection = f"{'Val' if run['protocol'] == 'validation' else 'Test'} {name}"
    values = [r.get(selection, float("nan")) for r in training]
    by_epoch = {int(r["epoch"]): r for r in training}
    best_epoch = checkpoint_epoch(os.path.join(run_dir, checkpoint))
    if best_epoch not in by_epoch:
        best_epoch = first_best_epoch(training, values)
    last_training = max(i for i, r in enumerate(records) if "learning rate" in r)
    evaluations = [r for r in records[last_training + 1 :] if "learning rate" not in r]
    run.update(selection=selection, best=by_epoch[best_epoch][selection] if best_epoch is not None else None,
               last=values[-1], best_epoch=best_epoch, at_best=by_epoch.get(best_epoch, {}),
               evaluation=evaluations[-1] if evaluations else None)
    return run


def run_figures(run):
    """One run's figures in table order: [(label, value or None, decimals)]."""
    kind, selection = run["kind"], run.get("selection")
    if kind is None:
        return []
    figures = [(f"best {selection} (selection metric)", run["best"], 2), (f"last {selection}", run["last"], 2),
               ("epoch of the best checkpoint", run["best_epoch"], 1)]
    at_best = {"joint": ("Test Loc Acc", "Test Loc Acc Greedy", "Test Ord Acc Inst"),
               "pretrain": ("Test Ord Acc Inst", "Test Ord Acc Proto")}[kind]
    figures += [(f"{name} at the best checkpoint", run["at_best"].get(name), 2) for name in at_best if name != selection]
    evaluation = run["evaluation"] or {}
    if kind == "joint":
        own = (run["cross_digit"] or {}).get(run["trained_on"], {})
        greedy = evaluation.get("Test Loc Acc Greedy", own.get("CorLoc greedy"))
        figures += [("CorLoc sampled, --evaluate 1 of the best pair", evaluation.get("Test Loc Acc"), 2),
                    ("CorLoc greedy, --evaluate 1 of the best pair", greedy, 2),
                    ("CorLoc of the whole-image box", evaluation.get("Test CorLoc whole image"), 2),
                    ("CorLoc of a random policy", evaluation.get("Test CorLoc random policy"), 2)]
    else:
        figures += [("Test Ord Acc Inst, --evaluate 1 of best.pth.tar", evaluation.get("Test Ord Acc Inst"), 2),
                    ("Spearman(embedding distance, IoU), --evaluate 1", evaluation.get("Test Spearman Distance IoU"), 3)]
    figures.append(("wall time [min]", None if run["wall_s"] is None else run["wall_s"] / 60, 1))
    return figures


def describe(values):
    """n, mean, sample sd and the 95 % t-interval of the mean (sd and interval None for n < 2)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "low": None, "high": None}
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def aggregate(runs):
    """Rows {figure, decimals, values, n, mean, sd, low, high} over runs; figures no run has are left out."""
    order, decimals, values = [], {}, {}
    for run in runs:
        for label, value, digits in run_figures(run):
            if label not in values:
                order.append(label)
                decimals[label], values[label] = digits, []
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                values[label].append(float(value))
    return [{"figure": label, "decimals": decimals[label], "values": values[label], **describe(values[label])}
            for label in order if values[label]]


def aggregate_cross_digit(runs):
    """Rows {digit, trained_on, column, values, n, mean, sd, low, high} over the runs' cross-digit tables."""
    tables = [run for run in runs if run["cross_digit"]]
    digits = sorted(set().union(*(run["cross_digit"] for run in tables))) if tables else []
    rows = []
    for digit in digits:
        trained = any(run["trained_on"] == digit for run in tables)
        for column in CROSS_DIGIT_COLUMNS:
            values = [run["cross_digit"][digit][column] for run in tables if column in run["cross_digit"].get(digit, {})]
            if values:
                rows.append({"digit": digit, "trained_on": trained, "column": column, "values": values, **describe(values)})
    return rows


def check_compatible(runs):
    """One script, one kind of training and one protocol per summary: a mean over mixed runs would mislead."""
    for field, what in (("script", "scripts"), ("kind", "kinds of training"), ("protocol", "checkpoint-selection protocols")):
        groups = {}
        for run in runs:
            if run[field] is not None:
                groups.setdefault(run[field], []).append(run["dir"])
        if len(groups) > 1:
            detail = "; ".join(f"{key}: {', '.join(dirs)}" for key, dirs in groups.items())
            raise SummaryError(f"the runs mix {what} ({detail}); summarize them separately")


def cell(row, decimals):
    if row["sd"] is None:
        return f"{row['mean']:.{decimals}f}", "n/a (1 run)"
    return f"{row['mean']:.{decimals}f} ± {row['sd']:.{decimals}f}", f"[{row['low']:.{decimals}f}, {row['high']:.{decimals}f}]"


def markdown(runs, rows, cross_rows):
    """The Markdown report: a header naming the runs and the protocol, the figure table, the cross-digit table."""
    kinds = {run["kind"] for run in runs if run["kind"]}
    protocols = {run["protocol"] for run in runs if run["protocol"]}
    lines = [f"{len(runs)} run(s){' of ' + KIND_NAMES[kinds.pop()] if kinds else ''}: "
             + ", ".join(run["dir"] for run in runs)]
    if protocols:
        lines.append(f"protocol: {PROTOCOLS[protocols.pop()]}")
    lines.append("mean ± sample sd over runs; 95 % interval of the mean from Student's t; `runs`: how many runs the figure rests on")
    sources = [run["wall_source"] for run in runs]
    if "wandb" in sources:
        lines.append(f"wall time: {sources.count('launch.json')} run(s) timed by their launcher (launch.json), "
                     f"{sources.count('wandb')} estimated from the wandb folder's start stamp to the last epoch's resume.pth.tar")
    if rows:
        lines += ["", "| figure | runs | mean ± sd | 95 % interval | per run |", "|---|---|---|---|---|"]
        for row in rows:
            each = ", ".join(f"{v:.{row['decimals']}f}" for v in row["values"])
            lines.append(f"| {row['figure']} | {row['n']} | " + " | ".join(cell(row, row["decimals"])) + f" | {each} |")
    if cross_rows:
        shown = ("CorLoc sampled", "CorLoc greedy", "mean IoU sampled", "CorLoc random policy")
        lines += ["", "Cross-digit localization (cross_digit.csv), mean ± sd over runs:", "",
                  "| digit | trained on | runs | " + " | ".join(shown) + " |", "|---|---|---|" + "---|" * len(shown)]
        for digit in sorted({r["digit"] for r in cross_rows}):
            by_column = {r["column"]: r for r in cross_rows if r["digit"] == digit}
            first = next(iter(by_column.values()))
            cells = [cell(by_column[c], 3 if "IoU" in c else 2)[0] if c in by_column else "" for c in shown]
            lines.append(f"| {digit} | {'yes' if first['trained_on'] else ''} | {first['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path, rows, key_columns):
    columns = [*key_columns, "n", "mean", "sd", "ci95_low", "ci95_high", "per_run"]
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        for row in rows:
            stats = [row["n"], row["mean"], row["sd"], row["low"], row["high"]]
            writer.writerow([row[k] for k in key_columns] + ["" if v is None else v for v in stats]
                            + [";".join(repr(v) for v in row["values"])])


def summarize(run_dirs, out_prefix=None):
    """Reads the run folders, checks they belong together, returns the Markdown report and, with
    `out_prefix`, writes `<prefix>.md`, `<prefix>.csv` and (when there are cross-digit tables)
    `<prefix>_cross_digit.csv`. Returns (markdown, written paths)."""
    runs = [read_run(os.path.normpath(d)) for d in run_dirs]
    check_compatible(runs)
    rows, cross_rows = aggregate(runs), aggregate_cross_digit(runs)
    if not rows and not cross_rows:
        raise SummaryError("the run folders hold no figures yet (no complete training epoch, no cross-digit table)")
    report = markdown(runs, rows, cross_rows)
    written = []
    if out_prefix:
        folder = os.path.dirname(os.path.abspath(out_prefix))
        os.makedirs(folder, exist_ok=True)
        with open(f"{out_prefix}.md", "w") as stream:
            stream.write(report)
        written.append(f"{out_prefix}.md")
        if rows:
            write_csv(f"{out_prefix}.csv", [{**r, "figure": r["figure"]} for r in rows], ["figure"])
            written.append(f"{out_prefix}.csv")
        if cross_rows:
            write_csv(f"{out_prefix}_cross_digit.csv", cross_rows, ["digit", "trained_on", "column"])
            written.append(f"{out_prefix}_cross_digit.csv")
    return report, written
