"""Several runs' learning curves on one figure (tools/plot_runs.py): runs of one recipe as mean ± sd."""

import os

import numpy as np

from utils.errors import SummaryError
from utils.plots import phase_free, plt, save_figure, series, training_records
from utils.run.checkpoints import load_checkpoint
from utils.run.folder import METRICS_FILE, read_owner
from utils.run.logging import read_records
from utils.run.resume import FREE_TO_CHANGE, RESUME_FILE

NOT_RECIPE = FREE_TO_CHANGE | {"seed", "wandb_project", "pretrained", "pretrained_agent", "visualize", "eval_digits"}


def recipe(run_dir):
    """What makes runs comparable: the script, its selection metric and its flags but the seed and paths."""
    owner = read_owner(run_dir)
    flags = ()
    if os.path.isfile(os.path.join(run_dir, RESUME_FILE)):
        args = load_checkpoint(os.path.join(run_dir, RESUME_FILE), required=("args",))["args"]
        flags = tuple(sorted((key, repr(value)) for key, value in args.items() if key not in NOT_RECIPE))
    return owner.get("script"), owner.get("selection"), flags


def read_curves(run_dir):
    """(recipe, selection, training records) of one run folder; SummaryError when it has none."""
    records = training_records(read_records(os.path.join(run_dir, METRICS_FILE)))
    key = recipe(run_dir)
    if key[1] is None or not records:
        raise SummaryError(f"{run_dir}: no complete training epoch (or not a run folder of this project)")
    return key, key[1], records


def plot_runs(run_dirs, out):
    """Draws the selection metric and its training-split counterpart of every run -> (path, {label: run dirs})."""
    groups = {}
    for run_dir in run_dirs:
        key, selection, records = read_curves(os.path.normpath(run_dir))
        groups.setdefault(key, []).append((run_dir, selection, records))
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), squeeze=False)
    labels = {}
    seen = {}
    for (script, selection, _), members in groups.items():
        seen[script] = seen.get(script, 0) + 1  # recipes of one script with other flags: numbered apart
        recipe_name = f"{script or '?'}" + (f" recipe {seen[script]}" if seen[script] > 1 else "")
        label = f"{recipe_name} ({len(members)} run{'s' if len(members) > 1 else ''})"
        labels[label] = [run_dir for run_dir, _, _ in members]
        for axis, name in zip(axes[0], (selection, f"Train {phase_free(selection)}")):
            curves = [series(records, name) for _, _, records in members]
            common = sorted(set.intersection(*(set(epochs) for epochs, _ in curves)))
            if not common:
                continue
            values = np.array([[dict(zip(*curve))[epoch] for epoch in common] for curve in curves])
            mean = values.mean(axis=0)
            line, = axis.plot(common, mean, label=label)
            if len(members) > 1:
                sd = values.std(axis=0, ddof=1)
                axis.fill_between(common, mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
            axis.set_title(name if len(groups) == 1 else phase_free(name) + (" (train)" if name.startswith("Train") else ""),
                           fontsize=9)
    for axis in axes[0]:
        axis.set_xlabel("epoch")
        if axis.get_lines():
            axis.legend(fontsize=7)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    return save_figure(figure, out), labels
