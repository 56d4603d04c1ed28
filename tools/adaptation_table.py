"""Markdown table of adaptation runs (adapt_agent.py): one row per target (background, digit), CorLoc
before / after (last epoch) / label-free / best-on-test (oracle) on the target test and train splits,
with the whole-image and random-policy baselines; mean ± sd where a target has several seeds.

    python tools/adaptation_table.py results/successor/adapt_mnist_randpatch2*
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.summary import describe  # noqa: E402
from utils.errors import SummaryError  # noqa: E402

COLUMNS = [("Test Before Loc Acc", "test before"), ("Test Last Loc Acc", "test after (last)"),
           ("Test Label Free Loc Acc", "test after (label-free)"), ("Test Best Loc Acc", "test best (oracle)"),
           ("Train Before Loc Acc", "train before"), ("Train Last Loc Acc", "train after (last)"),
           ("Train Best Loc Acc", "train best (oracle)"), ("Test CorLoc whole image", "whole image"),
           ("Test CorLoc random policy", "random policy"), ("Test Share Too Small", "too small (% of test)")]


def read_json(path):
    with open(path, "rb") as stream:
        return json.loads(stream.read().decode("utf-8"))


def read_run(run_dir):
    """(target (bg, digit), summary dict, epochs run) of one adaptation run folder; a real-image run's
    target is (its test list with the support size and the adaptation list, "") from data_lists.json."""
    summary = read_json(os.path.join(run_dir, "summary.json"))
    lists_path = os.path.join(run_dir, "data_lists.json")
    if os.path.isfile(lists_path):
        lists = read_json(lists_path)
        if not isinstance(summary, dict) or not isinstance(lists, dict) or "name" not in lists.get("test", {}):
            raise SummaryError(f"{run_dir}: summary.json or data_lists.json is not what adapt_agent.py writes")
        target = f"{lists['test']['name']}, support {len(lists.get('support', {}).get('ids', []))}"
        if lists["train"]["name"] != lists["test"]["name"]:
            target += f", adapted on {lists['train']['name']}"
        return (target, ""), summary, int(summary.get("Last Epoch", -1)) + 1
    support = read_json(os.path.join(run_dir, "support_inds.json"))
    if not isinstance(summary, dict) or not isinstance(support, dict) or not {"bg", "digit"} <= set(support):
        raise SummaryError(f"{run_dir}: summary.json or support_inds.json is not what adapt_agent.py writes")
    return (support["bg"], support["digit"]), summary, int(summary.get("Last Epoch", -1)) + 1


def cell(values):
    stats = describe(values)
    return f"{stats['mean']:.1f}" if stats["sd"] is None else f"{stats['mean']:.1f} ± {stats['sd']:.1f}"


def table(run_dirs):
    targets = {}
    for run_dir in run_dirs:
        target, summary, epochs = read_run(run_dir)
        targets.setdefault(target, []).append((summary, epochs))
    header = ["target", "seeds", "epochs", "test images", *[label for _, label in COLUMNS]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (bg, digit), runs in sorted(targets.items()):
        cells = [f"{bg}/{digit}" if digit != "" else bg, str(len(runs)), "/".join(sorted({str(e) for _, e in runs})),
                 str(int(runs[0][0].get("Test Images", 0)))]
        for name, _ in COLUMNS:
            values = [summary[name] for summary, _ in runs if name in summary]
            cells.append(cell(values) if values else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Markdown table of adapt_agent.py run folders (CorLoc %).")
    parser.add_argument("runs", nargs="+", help="adaptation run folders (each with summary.json)")
    args = parser.parse_args(argv)
    try:
        print(table(args.runs))
    except (OSError, ValueError, SummaryError) as error:  # ValueError: JSON that is cut short or not UTF-8
        print(f"adaptation_table.py: error: cannot read the runs ({error})", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
