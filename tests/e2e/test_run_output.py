"""What a run shows, for all five training scripts: the line per epoch, curves.png drawn from the run's
own records, trajectories.gif, and that none of it changes a logged figure; tools/plot_runs.py and
tools/summarize_runs.py write beside the runs they read."""

import contextlib
import io
import os

import pytest
from conftest import ROOT, load_script, read_metrics, write_corrupted_split, write_synthetic_split
from PIL import Image

from utils.plots import draw_run_curves, series, training_records
from utils.run.logging import read_records

pytestmark = pytest.mark.slow

RUN = ["--device", "cpu", "--wandb_mode", "disabled", "--epochs", "2", "--log_interval", "1"]
SCRIPTS = {  # savename -> (script, selection metric, its flags)
    "pre": ("ordinal-pretrain-cluttermnist-scale.py", "Test Ord Acc Inst", ["--pooling_size", "3", "--batch_size", "32"]),
    "joint": ("train-joint.py", "Test Loc Acc", ["--pooling_size", "3", "--batch_size", "32", "--pretrained", "pre/best.pth.tar",
                                                 "--seq_len", "4", "--num_act", "10", "--hidden_size", "8"]),
    "penc": ("pretrain_encoder_ordinal.py", "Test Ord Acc Proto", ["--bg_name", "patch", "--digit", "3", "--batch_size", "10",
                                                                   "--sample_size", "20"]),
    "agent": ("train_agent.py", "Test Loc Acc", ["--bg_name", "patch", "--digit", "3", "--batch_size", "10", "--sample_size", "20",
                                                 "--pretrained", "penc/best.pth.tar", "--seq_len", "4"]),
    "adapt": ("adapt_agent.py", "Test Loc Acc", ["--bg_name", "clutter", "--digit", "2", "--batch_size", "16",
                                                 "--pretrained_agent", "agent/best.pth.tar", "--seq_len", "4"]),
}


def run(script, argv):
    """Runs a script's main in-process -> its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        load_script(script).main(argv)
    return out.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The five scripts on tiny synthetic data -> (saveroot, {savename: stdout}, datapaths)."""
    root = tmp_path_factory.mktemp("output")
    data2021, corrupted, saveroot = str(root / "d2021"), str(root / "corrupted"), str(root / "runs")
    write_synthetic_split(data2021, 4, "train", 64, seed=1)
    write_synthetic_split(data2021, 4, "test", 32, seed=2)
    for digit in (2, 3):
        write_corrupted_split(corrupted, "patch", digit, "test", 10, seed=1)
    write_corrupted_split(corrupted, "patch", 3, "train", 30, seed=2)
    write_corrupted_split(corrupted, "clutter", 2, "train", 24, seed=3)
    write_corrupted_split(corrupted, "clutter", 2, "test", 12, seed=4)
    outputs = {}
    for name, (script, _, flags) in SCRIPTS.items():
        datapath = data2021 if name in ("pre", "joint") else corrupted
        extra = ["--visualize", "2"] if name == "adapt" else []
        outputs[name] = run(script, ["--datapath", datapath, "--saveroot", saveroot, "--savename", name, *RUN, *flags, *extra])
    datapaths = {name: data2021 if name in ("pre", "joint") else corrupted for name in SCRIPTS}
    return saveroot, outputs, datapaths


def test_one_short_line_per_epoch_with_the_figures_that_matter(runs):
    _, outputs, _ = runs
    for name, (_, selection, _) in SCRIPTS.items():
        lines = [line for line in outputs[name].splitlines() if line.startswith("epoch ")]
        assert len(lines) == 2, (name, outputs[name])
        for line in lines:
            assert len(line) <= 150 and f"| {selection} " in line and "| lr " in line and "| ETA " in line, line
            assert " train " in line and " test " in line and "| loss " in line, line
        assert lines[0].startswith("epoch 0 of 2 |") and " best |" in lines[0]


def test_curves_are_drawn_from_the_runs_own_records(runs):
    saveroot, _, _ = runs
    for name, (_, selection, _) in SCRIPTS.items():
        run_dir = os.path.join(saveroot, name)
        assert os.path.isfile(os.path.join(run_dir, "curves.png")), name
        _, data = draw_run_curves(run_dir)
        records = training_records(read_records(os.path.join(run_dir, "metrics.jsonl")))
        drawn = data[next(panel for panel in data if panel.endswith(f"(selection: {selection})"))]
        assert drawn[selection] == series(records, selection), name
        values = series(records, selection)[1]
        assert data["chosen epoch"] == values.index(max(values)), name
    adapt = draw_run_curves(os.path.join(saveroot, "adapt"))[1]["Loc Acc (selection: Test Loc Acc)"]
    summary = read_records(os.path.join(saveroot, "adapt", "metrics.jsonl"))[-1]
    assert adapt["Test Before Loc Acc"][1][0] == summary["Test Before Loc Acc"]


def test_evaluate_draws_the_curves_and_the_trajectory_gif(runs):
    saveroot, _, datapaths = runs
    script, _, flags = SCRIPTS["joint"]
    os.remove(os.path.join(saveroot, "joint", "curves.png"))
    out = run(script, ["--datapath", datapaths["joint"], "--saveroot", saveroot, "--savename", "joint", *RUN, *flags, "--evaluate", "1",
                       "--visualize", "3"])
    assert "learning curves ->" in out and os.path.isfile(os.path.join(saveroot, "joint", "curves.png"))
    with Image.open(os.path.join(saveroot, "joint", "trajectories.gif")) as gif:
        assert gif.n_frames == 4 + 1  # --seq_len 4: the whole image, then one frame per step
    with Image.open(os.path.join(saveroot, "adapt", "trajectories.gif")) as gif:
        assert gif.n_frames == 4 + 1
    assert "before and after adaptation" in runs[1]["adapt"]


def test_neither_the_figures_nor_log_all_change_a_logged_figure(runs):
    """The same adaptation without --visualize, and the same pretraining with --log_all 1, log the same records."""
    saveroot, outputs, datapaths = runs
    script, _, flags = SCRIPTS["adapt"]
    run(script, ["--datapath", datapaths["adapt"], "--saveroot", saveroot, "--savename", "adapt_plain", *RUN, *flags])
    assert read_metrics(os.path.join(saveroot, "adapt_plain")) == read_metrics(os.path.join(saveroot, "adapt"))
    script, _, flags = SCRIPTS["pre"]
    out = run(script, ["--datapath", datapaths["pre"], "--saveroot", saveroot, "--savename", "pre_all", *RUN, *flags, "--log_all", "1"])
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and all("Train Ord Acc Proto" in line and "Test Total Loss" in line for line in lines)
    assert read_metrics(os.path.join(saveroot, "pre_all")) == read_metrics(os.path.join(saveroot, "pre"))


def test_plot_and_summary_tools_write_beside_the_runs(runs, tmp_path, monkeypatch):
    saveroot, _, datapaths = runs
    script, _, flags = SCRIPTS["pre"]
    for seed in ("1", "2"):
        run(script, ["--datapath", datapaths["pre"], "--saveroot", saveroot, "--savename", f"pre_seed{seed}", *RUN, *flags, "--seed", seed])
    monkeypatch.chdir(tmp_path)  # not where the tools write
    seeds = [os.path.join(saveroot, f"pre_seed{seed}") for seed in ("1", "2")]
    path, groups = load_script(os.path.join(ROOT, "tools", "plot_runs.py")).main([*seeds, os.path.join(saveroot, "joint")])
    assert path == os.path.join(saveroot, "runs_curves.png") and os.path.isfile(path)
    assert sorted(len(members) for members in groups.values()) == [1, 2]  # the two seeds share a recipe, the joint run not
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        load_script(os.path.join(ROOT, "tools", "summarize_runs.py")).main(seeds)
    assert os.path.isfile(os.path.join(saveroot, "runs_summary.md")) and not os.listdir(tmp_path)
    assert f"written: {os.path.join(saveroot, 'runs_summary.md')}" in out.getvalue()
