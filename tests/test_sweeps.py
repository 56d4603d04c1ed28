"""sweeps/*.yaml against utils/method2021/flags.py: every parameter of a wandb sweep config is a flag of
its program, and sampled combinations, formatted as the wandb agent formats them, pass the program's parser."""

import glob
import math
import os
import random

import pytest
import yaml
from conftest import ROOT

from utils.method2021.flags import get_parser, parse_args

SWEEPS = sorted(glob.glob(os.path.join(ROOT, "sweeps", "*.yaml")))
SELECTION = {"ordinal-pretrain-cluttermnist-scale.py": "Ord Acc Inst", "train-joint.py": "Loc Acc"}


def load(path):
    with open(path) as stream:
        return yaml.safe_load(stream)


def draw(spec, rng, pick):
    """One value of a sweep parameter: `pick` is 'random', 'low' or 'high' (the range's ends)."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        options = spec["values"]
        return {"low": options[0], "high": options[-1]}.get(pick) if pick != "random" else rng.choice(options)
    low, high = spec["min"], spec["max"]
    kind = spec["distribution"]
    if pick != "random":
        return low if pick == "low" else high
    if kind == "log_uniform_values":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if kind == "uniform":
        return rng.uniform(low, high)
    if kind == "int_uniform":
        return rng.randint(low, high)
    raise AssertionError(f"distribution {kind} not covered by this test")


def agent_args(params):
    """The `${args}` of the wandb agent for these values (wandb's own formatting)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    return create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})["args"]


def test_there_are_sweeps_for_both_stages():
    assert {load(path)["program"] for path in SWEEPS} == set(SELECTION)


@pytest.mark.parametrize("path", SWEEPS, ids=os.path.basename)
def test_sweep_config(path):
    config = load(path)
    program = config["program"]
    assert os.path.isfile(os.path.join(ROOT, program))
    command = config["command"]
    assert command[:2] == ["${env}", "${interpreter}"] and "${program}" in command and "${args}" in command
    for word in command[: command.index("${args}")]:  # after ${args}: literal flags (tested in the next test)
        if not word.startswith("${"):
            assert os.path.isfile(os.path.join(ROOT, word)), f"{word} is run from the repo root but is not there"
    flags = get_parser()._option_string_actions
    for name in config["parameters"]:
        assert f"--{name}" in flags, f"{os.path.basename(path)}: --{name} is not a flag of {program}"
    # the metric is one the program logs, on the split the sweep's protocol selects on
    val_split = config["parameters"].get("val_split", {}).get("value", 0)
    split = "Val" if val_split > 0 else "Test"
    assert config["metric"]["name"] == f"{split} {SELECTION[program]}" and config["metric"]["goal"] == "maximize"
    assert not {"seed", "savename", "saveroot", "datapath"} & set(config["parameters"]), "tools/sweep_run.py sets these per run"


@pytest.mark.parametrize("path", SWEEPS, ids=os.path.basename)
def test_sampled_combinations_parse(path):
    config = load(path)
    rng = random.Random(0)
    picks = ["low", "high"] + ["random"] * 20
    for pick in picks:
        params = {name: draw(spec, rng, pick) for name, spec in config["parameters"].items()}
        literal = config["command"][config["command"].index("${args}") + 1 :]  # e.g. joint's --steps 30 70 110
        args = parse_args(agent_args(params) + literal)
        if config["program"] == "train-joint.py":
            assert args.steps == [30, 70, 110]  # joint.sh's milestones (the flag's default is none)
        for name, value in params.items():
            parsed = getattr(args, name)
            if isinstance(parsed, (int, float)):
                assert parsed == pytest.approx(float(value)), name
            else:
                assert parsed == str(value), name
