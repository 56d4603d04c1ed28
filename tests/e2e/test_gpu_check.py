"""benchmarks/gpu_check.sh in its reduced CPU size (GPU_CHECK_DEVICE=cpu) on tiny MNIST idx files: every
stage of this checkout runs and the last line is the verdict. The side-by-side timing against a
reference checkout doubles the runs, so here the reference is left out (a missing REFERENCE_DIR);
docs/speed.md gives a whole CPU run with it."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT, write_tiny_raw_mnist

pytestmark = pytest.mark.slow


def test_the_gpu_check_runs_on_a_cpu_and_gives_a_verdict(tmp_path):
    write_tiny_raw_mnist(str(tmp_path / "mnist"), num_train=2500, num_test=300)
    out = tmp_path / "out"
    env = {**os.environ, "GPU_CHECK_DEVICE": "cpu", "REFERENCE_DIR": str(tmp_path / "no-reference"), "PYTHON": sys.executable,
           "WORK": str(tmp_path / "work")}
    result = subprocess.run(["benchmarks/gpu_check.sh", str(tmp_path / "mnist"), str(out)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert lines[0].startswith("gpu_check ") and " commit " in lines[0] and "device cpu" in lines[0]
    verdict = lines[-1]
    assert verdict.startswith("verdict: PASS on cpu") and "failed: none" in verdict and verdict.endswith("/ this: not timed")
    for stage in ("CUDA tests", "data: cluttered digit 4", "data: clutter digit 2", "2021 pretrain.sh, 4 epochs (this)",
                  "2021 joint.sh, 4 epochs (this)", "successor agent to time with"):
        assert stage in verdict.split("| passed:")[1].split("| failed:")[0], stage
    assert "2021 joint.sh median epoch: this " in result.stdout  # read from the run's epoch lines
    assert (out / "summary.txt").read_text().strip().splitlines()[-1] == verdict


def test_the_gpu_check_fails_on_a_crashed_run(tmp_path):
    """A Python that fails every command: each stage fails, the runs are skipped without data, the
    verdict says FAIL and the exit status is 1."""
    env = {**os.environ, "GPU_CHECK_DEVICE": "cpu", "REFERENCE_DIR": str(tmp_path / "none"), "PYTHON": "/bin/false",
           "WORK": str(tmp_path / "work")}
    result = subprocess.run(["benchmarks/gpu_check.sh", str(tmp_path / "no-mnist"), str(tmp_path / "out")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    verdict = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 1 and verdict.startswith("verdict: FAIL") and "CUDA tests (exit 1)" in verdict
    assert "data: cluttered digit 4 (exit 1)" in verdict and "runs (no data)" in verdict
