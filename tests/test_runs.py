"""Many runs: the seed launcher, the sweep-run wrapper and the multi-run summary."""

import csv
import importlib.util
import json
import os
import sys

import pytest
from conftest import ROOT

from tools.launch import seed_from_run_id, sweep_command
from tools.summary import summarize
from utils.run.checkpoints import save_checkpoint

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
    import numpy as np
    from conftest import write_synthetic_split

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


def write_joint_run(run_dir, corlocs, best_epoch, val=True, cross=None, wall_s=None):
    """A joint run folder by hand: training epochs with the given test CorLocs (validation CorLoc = test
    + 1), an --evaluate 1 record, a best checkpoint at `best_epoch`, optionally cross_digit.csv."""
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as stream:
        for epoch, corloc in enumerate(corlocs):
            record = {"epoch": epoch, "Train Pol Loss": 1.0, "Test Loc Acc": corloc, "Test Loc Acc Greedy": corloc + 2,
                      "Test Ord Acc Inst": 80.0, "learning rate": 0.001, "Test IoU Distribution": "x.png"}
            if val:
                record["Val Loc Acc"] = corloc + 1
            stream.write(json.dumps(record) + "\n")
        stream.write(json.dumps({"epoch": best_epoch, "Test Loc Acc": 50.0, "Test Loc Acc Greedy": 60.0,
                                 "Test CorLoc whole image": 0.0, "Test CorLoc random policy": 3.0}) + "\n")
    save_checkpoint({"epoch": best_epoch, "state_dict": {}, "acc": 0.0}, os.path.join(run_dir, "best_net.pth.tar"))
    if cross:
        with open(os.path.join(run_dir, "cross_digit.csv"), "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["digit", "trained on", "images", "CorLoc sampled", "CorLoc greedy"])
            for digit, (sampled, greedy) in cross.items():
                writer.writerow([digit, "yes" if digit == 4 else "", 100, sampled, greedy])
    if wall_s is not None:
        with open(os.path.join(run_dir, "launch.json"), "w") as stream:
            json.dump({"sessions": [{"wall_s": wall_s / 2, "exit_code": 130}, {"wall_s": wall_s / 2, "exit_code": 0}]}, stream)


def test_summary_statistics_by_hand(tmp_path):
    runs = [str(tmp_path / f"run{k}") for k in range(3)]
    # test CorLoc at the checkpoint's epoch 1: 70, 74, 78 -> mean 74, sd 4, t(0.975, 2) = 4.302653
    write_joint_run(runs[0], [60, 70, 90], 1, cross={4: (70, 80), 7: (50, 52)}, wall_s=120)
    write_joint_run(runs[1], [60, 74, 10], 1, cross={4: (72, 80), 7: (60, 58)}, wall_s=240)
    write_joint_run(runs[2], [60, 78, 20], 1, cross={4: (74, 80)})
    os.makedirs(os.path.join(runs[2], "wandb", "offline-run-20260101_000000-xyz"))  # no resume.pth.tar: no estimate
    report, _ = summarize(runs, str(tmp_path / "s"))
    rows = {row["figure"]: row for row in csv.DictReader(open(tmp_path / "s.csv"))}
    at_best = rows["Test Loc Acc at the best checkpoint"]
    half = 4.302653 * 4 / 3**0.5
    assert float(at_best["mean"]) == pytest.approx(74) and float(at_best["sd"]) == pytest.approx(4)
    assert float(at_best["ci95_low"]) == pytest.approx(74 - half, abs=1e-4) and float(at_best["ci95_high"]) == pytest.approx(74 + half, abs=1e-4)
    assert float(rows["best Val Loc Acc (selection metric)"]["mean"]) == pytest.approx(75)
    assert float(rows["last Val Loc Acc"]["mean"]) == pytest.approx(41)  # 91, 11, 21
    assert float(rows["Test Loc Acc Greedy at the best checkpoint"]["mean"]) == pytest.approx(76)
    assert rows["wall time [min]"]["n"] == "2" and float(rows["wall time [min]"]["mean"]) == pytest.approx(3)
    assert float(rows["CorLoc of a random policy"]["mean"]) == 3.0 and rows["CorLoc of a random policy"]["sd"] == "0.0"
    assert float(rows["CorLoc sampled, --evaluate 1 of the best pair"]["mean"]) == 50.0
    assert "held-out validation split" in report and "| 74.00 ± 4.00 | [64.06, 83.94] |" in report
    cross = {(row["digit"], row["column"]): row for row in csv.DictReader(open(tmp_path / "s_cross_digit.csv"))}
    assert cross[("4", "CorLoc sampled")]["n"] == "3" and float(cross[("4", "CorLoc sampled")]["mean"]) == pytest.approx(72)
    assert cross[("7", "CorLoc greedy")]["n"] == "2" and float(cross[("7", "CorLoc greedy")]["mean"]) == pytest.approx(55)
    assert "| 4 | yes | 3 | 72.00 ± 2.00 | 80.00 ± 0.00 |" in report


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


def test_wall_time_estimate_from_wandb_folder(tmp_path):
    import datetime

    from tools.summary import wall_seconds

    run_dir = tmp_path / "run"
    write_joint_run(str(run_dir), [60, 70], 1)
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for offset, name in ((0, "offline-run-20260101_120000-abc"), (900, "run-20260101_121500-def"), (0, "latest-run")):
        (run_dir / "wandb" / name).mkdir(parents=True)
    (run_dir / "resume.pth.tar").write_bytes(b"x")
    end = start.timestamp() + 600
    os.utime(run_dir / "resume.pth.tar", (end, end))
    assert wall_seconds(str(run_dir)) == (pytest.approx(600), "wandb")
    report, _ = summarize([str(run_dir)])
    assert "| wall time [min] | 1 | 10.0 |" in report and "1 estimated from the wandb folder" in report
