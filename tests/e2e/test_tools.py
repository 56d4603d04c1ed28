"""The tool scripts end to end: tools/run_seeds.py (seed launcher, real and stand-in training runs),
tools/sweep_run.py (with tools/launch.py's sweep_command), tools/summarize_runs.py, tools/background_grid.py."""

import csv
import importlib.util
import json
import os
import sys

import numpy as np
import pytest
from conftest import ROOT, load_script, random_digits, write_joint_run, write_synthetic_split

from tools.launch import seed_from_run_id, sweep_command
from tools.summary import summarize
from utils.data.backgrounds import make_background_images

pytestmark = pytest.mark.slow


TINY = ["--pooling_size", "3", "--batch_size", "32", "--epochs", "1", "--max_batches", "2", "--wandb_mode", "disabled"]


# a stand-in training script: records its GPU, seed and start/end times in its run folder; exits 3 for --seed 13
FAKE = """
import json, os, sys, time
DEFAULT_SAVENAME = "fake_train"
args = sys.argv[1:]
value = lambda flag: args[len(args) - 1 - args[::-1].index(flag) + 1]
run_dir = os.path.join(value("--saveroot"), value("--savename"))
os.makedirs(run_dir, exist_ok=True)
start = time.time()
time.sleep(0.3)
with open(os.path.join(run_dir, "seen.json"), "w") as f:
    json.dump({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "seed": value("--seed"), "args": args,
               "start": start, "end": time.time()}, f)
print("fake run", value("--seed"))
sys.exit(3 if value("--seed") == "13" else 0)
"""


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exit_code(call):
    with pytest.raises(SystemExit) as stop:
        call()
    return stop.value.code


@pytest.fixture
def fake_program(tmp_path):
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE)
    return str(path)


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory):
    """Two tiny real pretraining runs (seeds 0 and 1) started by tools/run_seeds.py."""
    root = tmp_path_factory.mktemp("seeds")
    datapath = str(root / "data")
    write_synthetic_split(datapath, 4, "train", 96, seed=1)
    write_synthetic_split(datapath, 4, "test", 48, seed=2)
    saveroot = str(root / "results")
    load_tool("run_seeds").main(["--seeds", "0", "1", os.path.join(ROOT, "ordinal-pretrain-cluttermnist-scale.py"),
                                 "--datapath", datapath, "--saveroot", saveroot, *TINY])
    np.testing.assert_equal(sorted(os.listdir(saveroot)), ["cluttermnist_pretrain_seed0", "cluttermnist_pretrain_seed1"])
    return [os.path.join(saveroot, f"cluttermnist_pretrain_seed{k}") for k in (0, 1)]


def test_seed_launcher_gives_each_seed_its_folder_and_seed(seed_runs):
    metrics = []
    for seed, run_dir in enumerate(seed_runs):
        with open(os.path.join(run_dir, "launch.json")) as stream:
            launch = json.load(stream)
        assert launch["seed"] == seed and launch["command"][-2:] == ["--seed", str(seed)]
        assert [s["exit_code"] for s in launch["sessions"]] == [0] and launch["sessions"][0]["wall_s"] > 0
        with open(os.path.join(run_dir, "metrics.jsonl")) as stream:
            metrics.append([json.loads(line) for line in stream])
        assert len(metrics[-1]) == 1
    assert metrics[0] != metrics[1], "two seeds gave identical metrics"


def test_summary_of_seed_runs(seed_runs, tmp_path):
    report, written = summarize(seed_runs, str(tmp_path / "summary"))
    assert "2 run(s) of ordinal pretraining" in report and "chosen on the test split" in report
    best = []
    for run_dir in seed_runs:
        with open(os.path.join(run_dir, "metrics.jsonl")) as stream:
            best.append(max(json.loads(line)["Test Ord Acc Inst"] for line in stream))
    with open(tmp_path / "summary.csv", newline="") as stream:
        rows = {row["figure"]: row for row in csv.DictReader(stream)}
    row = rows["best Test Ord Acc Inst (selection metric)"]
    assert int(row["n"]) == 2 and float(row["mean"]) == pytest.approx(sum(best) / 2)
    assert int(rows["wall time [min]"]["n"]) == 2
    assert written == [str(tmp_path / "summary.md"), str(tmp_path / "summary.csv")]


def test_launcher_parallel_over_gpus(fake_program, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5")
    monkeypatch.setenv("SEEDS", "10 11 12 13")
    saveroot = str(tmp_path / "r")
    code = exit_code(lambda: load_tool("run_seeds").main([fake_program, "--saveroot", saveroot, "--lr", "{seed}e-3"]))
    assert code == 1 and "seeds [13] failed (exit codes [3])" in capsys.readouterr().err
    seen = {}
    for seed in (10, 11, 12, 13):
        run_dir = os.path.join(saveroot, f"fake_train_seed{seed}")
        with open(os.path.join(run_dir, "seen.json")) as stream:
            seen[seed] = json.load(stream)
        with open(os.path.join(run_dir, "launch.json")) as stream:
            launch = json.load(stream)
        assert launch["device"] == seen[seed]["gpu"] and launch["sessions"][0]["exit_code"] == (3 if seed == 13 else 0)
        assert seen[seed]["args"][:2] == ["--saveroot", saveroot] and f"{seed}e-3" in seen[seed]["args"]
        assert open(run_dir + ".log").read().strip() == f"fake run {seed}"
    by_gpu = {}
    for record in seen.values():
        by_gpu.setdefault(record["gpu"], []).append((record["start"], record["end"]))
    assert set(by_gpu) == {"3", "5"}, "each GPU named in CUDA_VISIBLE_DEVICES runs seeds"
    for spans in by_gpu.values():  # one run per GPU at a time
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_launcher_sequential_names_and_errors(fake_program, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("SAVEROOT", str(tmp_path / "env_root"))
    tool = load_tool("run_seeds")
    tool.main(["--seeds", "1", "2", "--dry_run", "1", os.path.join(ROOT, "joint.sh"),
               "--pretrained", "cluttermnist_pretrain_seed{seed}/best.pth.tar"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].endswith(f"--pretrained cluttermnist_pretrain_seed2/best.pth.tar --saveroot {tmp_path / 'env_root'} "
                             "--savename cluttermnist_joint_seed2 --seed 2")
    tool.main(["--seeds", "4", "--savename", "mine", fake_program, "--saveroot", str(tmp_path / "r")])
    assert json.load(open(tmp_path / "r" / "mine_seed4" / "seen.json"))["gpu"] is None
    for argv, message in [([fake_program], "no seeds"), (["--seeds", "1", "1", fake_program], "seeds repeat"),
                          (["--seeds", "1", str(tmp_path / "none.sh")], "no such file")]:
        monkeypatch.delenv("SEEDS", raising=False)
        assert exit_code(lambda: tool.main(argv)) in (1, 2)
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_sweep_run(fake_program, tmp_path, monkeypatch, capsys):
    env = {"WANDB_RUN_ID": "abc123", "WANDB_SWEEP_ID": "sw1", "DATAPATH": "/data/x", "SAVEROOT": str(tmp_path)}
    command, run_dir, seed, _ = sweep_command(fake_program, ["--lr=0.01"], env)
    assert command == [sys.executable, fake_program, "--lr=0.01", "--datapath", "/data/x", "--saveroot", str(tmp_path),
                       "--savename", "sweep_sw1/abc123", "--seed", str(seed)]
    assert seed == seed_from_run_id("abc123") != seed_from_run_id("abc124")
    assert run_dir == os.path.join(str(tmp_path), "sweep_sw1", "abc123")
    command, _, seed, _ = sweep_command(fake_program, ["--seed=7", "--saveroot=/elsewhere"], env)
    assert seed == 7 and command.count("--saveroot") == 0 and "--seed" not in command
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exit_code(lambda: load_tool("sweep_run").main([fake_program, "--lr=0.01"])) == 0
    assert json.load(open(os.path.join(run_dir, "launch.json")))["seed"] == seed_from_run_id("abc123")
    monkeypatch.delenv("WANDB_RUN_ID")
    assert exit_code(lambda: load_tool("sweep_run").main([fake_program])) == 1
    assert "WANDB_RUN_ID is not set" in capsys.readouterr().err


def test_summary_single_run_and_bad_input(tmp_path, capsys):
    write_joint_run(str(tmp_path / "val"), [60, 70], 0)
    write_joint_run(str(tmp_path / "test"), [60, 70], 1, val=False)
    report, _ = summarize([str(tmp_path / "test")])
    assert "chosen on the test split" in report and "| best Test Loc Acc (selection metric) | 1 | 70.00 | n/a (1 run) |" in report
    tool = load_tool("summarize_runs")
    for dirs, message in [([tmp_path / "val", tmp_path / "test"], "mix checkpoint-selection protocols"),
                          ([tmp_path / "nothing"], "no such run folder"), ([tmp_path], "neither metrics.jsonl")]:
        assert exit_code(lambda: tool.main([*map(str, dirs), "--out", ""])) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_background_grid_draws_the_kinds_that_exist(tmp_path, capsys):
    grid = load_script(os.path.join("tools", "background_grid.py"))
    datapath = str(tmp_path / "data")
    digits = random_digits(np.random.default_rng(19), 3)
    for bg in ("clean", "patch"):
        images, labels = make_background_images(bg, digits, np.random.default_rng(20))
        folder = os.path.join(datapath, "test", bg)
        os.makedirs(folder)
        np.save(os.path.join(folder, "5_data.npy"), images)
        np.save(os.path.join(folder, "5_label.npy"), labels)
    out = str(tmp_path / "grid.png")
    grid.main(["--datapath", datapath, "--digit", "5", "--split", "test", "--count", "2", "--out", out])
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "clean, patch;" in captured.out and "skipping clutter" in captured.err and "--bg_name clutter" in captured.err
    with pytest.raises(SystemExit) as stop:
        grid.main(["--datapath", str(tmp_path / "none"), "--out", str(tmp_path / "no.png")])
    assert stop.value.code == 2 and "no background files" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # no extension: one line, nothing written, no "wrote"
        grid.main(["--datapath", datapath, "--digit", "5", "--split", "test", "--out", str(tmp_path / "grid")])
    captured = capsys.readouterr()
    assert stop.value.code == 2 and "give a file ending in .png" in captured.err and "wrote" not in captured.out
    assert not os.path.exists(tmp_path / "grid") and not os.path.exists(tmp_path / "grid.png.tmp")


def one_error_line(call, capsys):
    """(exit code, the stderr lines) of a tool call that must fail with one line."""
    code = exit_code(call)
    return code, capsys.readouterr().err.strip().splitlines()


def test_tools_on_bad_run_folders_give_one_line(tmp_path, capsys):
    good, other = str(tmp_path / "a"), str(tmp_path / "b")
    write_joint_run(good, [10.0, 20.0], 1)
    write_joint_run(other, [10.0, 30.0], 1)
    with open(os.path.join(good, "run.json"), "w") as stream:
        json.dump({"script": "train-joint.py"}, stream)
    with open(os.path.join(other, "run.json"), "w") as stream:
        json.dump({"script": "train_agent.py"}, stream)
    summarize_runs = load_tool("summarize_runs").main
    code, err = one_error_line(lambda: summarize_runs([good, other, "--out", ""]), capsys)
    assert code == 1 and len(err) == 1 and "the runs mix scripts" in err[0]  # a successor run is not a seed of a 2021 recipe
    with open(os.path.join(other, "metrics.jsonl"), "ab") as stream:
        stream.write(b'{"epoch": 2, "Test Loc Acc": \xff\xfe}\n')
    code, err = one_error_line(lambda: summarize_runs([other, "--out", ""]), capsys)
    assert code == 1 and len(err) == 1 and "line 4: not a JSON record" in err[0]
    with open(os.path.join(other, "metrics.jsonl"), "w") as stream:
        stream.write('{"Test Loc Acc": 1.0}\n')
    code, err = one_error_line(lambda: summarize_runs([other, "--out", ""]), capsys)
    assert code == 1 and len(err) == 1 and "without a numeric epoch" in err[0]
    with open(os.path.join(good, "summary.json"), "w") as stream:
        json.dump([1, 2], stream)
    with open(os.path.join(good, "support_inds.json"), "w") as stream:
        json.dump({"bg": "clutter", "digit": 2, "indices": [0]}, stream)
    code, err = one_error_line(lambda: load_tool("adaptation_table").main([good]), capsys)
    assert code == 1 and len(err) == 1 and "not what adapt_agent.py writes" in err[0]


def test_background_grid_refuses_an_output_without_a_figure_suffix(tmp_path, capsys):
    code, err = one_error_line(lambda: load_tool("background_grid").main(["--datapath", str(tmp_path), "--out", str(tmp_path / "grid")]), capsys)
    assert code == 2 and "give a file ending in .png" in err[-1] and not os.listdir(tmp_path)


PATIENT = """
import os, signal, sys, time
args = sys.argv[1:]
run_dir = os.path.join(args[args.index("--saveroot") + 1], args[args.index("--savename") + 1])
os.makedirs(run_dir, exist_ok=True)

def stop(signum, frame):
    open(os.path.join(run_dir, "stopped"), "w").write(str(signum))
    sys.exit(130)

signal.signal(signal.SIGTERM, stop)
open(os.path.join(run_dir, "pid"), "w").write(str(os.getpid()))
time.sleep(60)
sys.exit(0)
"""


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_signal_to_the_launcher_stops_its_seed_cleanly(tmp_path, signal_name):
    """SIGTERM (a scheduler) or SIGINT to tools/run_seeds.py alone (not its process group) reaches the
    running seed, which stops (exit 130); the launcher records that in launch.json and exits 130 with
    one line; no process is left behind."""
    import signal
    import subprocess
    import time

    program = tmp_path / "patient_train.py"
    program.write_text("DEFAULT_SAVENAME = 'patient'\n" + PATIENT)
    saveroot = tmp_path / "runs"
    launcher = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "run_seeds.py"), "--seeds", "0", "1", str(program),
                                 "--saveroot", str(saveroot)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_file = saveroot / "patient_seed0" / "pid"
    deadline = time.time() + 60
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    launcher.send_signal(getattr(signal, signal_name))
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 130 and len(err.strip().splitlines()) == 1 and err.startswith("error: interrupted"), err
    assert (saveroot / "patient_seed0" / "stopped").read_text() == str(int(signal.SIGTERM))
    with open(saveroot / "patient_seed0" / "launch.json") as stream:
        assert json.load(stream)["sessions"][-1]["exit_code"] == 130
    assert not (saveroot / "patient_seed1").exists()  # the next seed never started
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


@pytest.mark.parametrize("recipe", ["pretrain.sh", "joint.sh"])
def test_the_recipes_hand_their_process_to_the_training_script(recipe, tmp_path):
    """The recipe execs Python, so the process a launcher or scheduler signals is the training script."""
    import subprocess

    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\n")
    fake_python.chmod(0o755)
    process = subprocess.Popen([os.path.join(ROOT, recipe)], env={**os.environ, "PYTHON": str(fake_python)})
    assert process.wait(timeout=30) == 0
    assert int((tmp_path / "pid").read_text()) == process.pid
