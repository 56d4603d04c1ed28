"""benchmarks/bench_fixed_cost.py end to end: its epoch clock splits real epochs of two scripts into
batches and fixed cost whose parts add up."""

import contextlib
import io
import re
import sys

import pytest
from conftest import ROOT, needs_mlxtend

pytestmark = pytest.mark.slow


@needs_mlxtend
def test_the_fixed_cost_benchmark_reports_every_epoch_split(monkeypatch):
    monkeypatch.syspath_prepend(f"{ROOT}/benchmarks")
    sys.modules.pop("bench_fixed_cost", None)
    import bench_fixed_cost

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench_fixed_cost.main(["--scripts", "pretrain", "agent", "--epochs", "3", "--batch_size", "8"])
    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if " epoch " in line and "fixed" in line}
    assert set(lines) == {"pretrain", "agent"}
    for line in lines.values():
        figures = dict(re.findall(r"(epoch|batches|fixed|checkpoints|logging|loop|rest)\s+([0-9.]+)", line))
        epoch, batches, fixed = float(figures["epoch"]), float(figures["batches"]), float(figures["fixed"])
        parts = sum(float(figures[name]) for name in ("checkpoints", "logging", "loop", "rest"))
        assert 0 < batches < epoch and fixed >= 0 and parts <= fixed + 1.0  # the parts are within the fixed cost
        assert "2 epochs" in line  # the first of three is not counted
