"""Runs one recipe over several seeds, each into its own run folder `<saveroot>/<savename>_seed<k>`.

    python tools/run_seeds.py --seeds 0 1 2 ./pretrain.sh
    python tools/run_seeds.py --seeds 0 1 2 ./joint.sh --pretrained cluttermnist_pretrain_seed{seed}/best.pth.tar
    SEEDS="0 1 2" CUDA_VISIBLE_DEVICES=0,1 python tools/run_seeds.py train-joint.py --pooling_size 5 ...

The command is a recipe (./pretrain.sh, ./joint.sh) or a training script with its flags; the
launcher appends `--saveroot R --savename <savename>_seed<k> --seed k` and replaces `{seed}` in
the command by k. Seeds run one after another; when CUDA_VISIBLE_DEVICES names more than one GPU,
they run in parallel, one per GPU at a time, each writing its output to `<run folder>.log`.
Every run folder gets `launch.json` (command, seed, GPU, start, wall time, exit code).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.launch import base_command, gpu_lanes, last_flag_value, program_savename, run_jobs, seed_jobs  # noqa: E402
from utils.errors import LaunchError  # noqa: E402
from utils.run.signals import interrupt_on_sigterm  # noqa: E402


def split_argv(argv):
    """(launcher flags, command): the command starts at `--` or at the first word that is neither a
    launcher flag nor its value (`--seeds` takes the whole numbers that follow it)."""
    own, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return own, argv[i + 1 :]
        if arg == "--seeds":
            own.append(arg)
            i += 1
            while i < len(argv) and argv[i].lstrip("-").isdigit():
                own.append(argv[i])
                i += 1
            continue
        if arg in ("--savename", "--dry_run"):
            own += argv[i : i + 2]
            i += 2
            continue
        if arg in ("-h", "--help") or arg.startswith(("--savename=", "--dry_run=", "--seeds=")):
            own.append(arg)
            i += 1
            continue
        return own, argv[i:]
    return own, []


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="%(prog)s [--seeds K [K ...]] [--savename NAME] [--dry_run 0|1] [--] COMMAND [FLAGS ...]")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds to run (default: $SEEDS, e.g. SEEDS='0 1 2')")
    parser.add_argument("--savename", default=None,
                        help="base name of the run folders (default: the command's last --savename, else the recipe's own)")
    parser.add_argument("--dry_run", type=int, default=0, choices=[0, 1], help="1: print the commands, run nothing")
    own, command = split_argv(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(own)
    if args.seeds is None:
        text = os.environ.get("SEEDS", "").replace(",", " ").split()
        try:
            args.seeds = [int(seed) for seed in text]
        except ValueError:
            parser.error(f"SEEDS must be whole numbers separated by spaces, got {os.environ['SEEDS']!r}")
    if not args.seeds:
        parser.error("no seeds: give --seeds 0 1 2 or SEEDS='0 1 2'")
    if not command:
        parser.error("no command: e.g. ./joint.sh, or train-joint.py and its flags")
    return args, command


def main(argv=None):
    interrupt_on_sigterm()  # SIGTERM (a scheduler's kill) is a Ctrl-C: it reaches the running seed, which saves and stops
    args, command = parse(argv)
    try:
        full = base_command(command)
        savename = args.savename or last_flag_value(command, "--savename") or program_savename(command[0])
        if not savename:
            raise LaunchError(f"cannot tell the run folder name of {command[0]}; give --savename")
        saveroot = last_flag_value(command, "--saveroot") or os.environ.get("SAVEROOT") or "results"
        jobs = seed_jobs(full, args.seeds, saveroot, savename)
        lanes = gpu_lanes(os.environ)
        if args.dry_run:
            for job in jobs:
                print(" ".join(job["command"]))
            return {}
        codes = run_jobs(jobs, lanes)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    except KeyboardInterrupt:
        print("error: interrupted; the running seeds were stopped and recorded in their launch.json; rerun the same command "
              "plus --resume 1 to continue them", file=sys.stderr)
        raise SystemExit(130)
    failed = [seed for seed, code in codes.items() if code != 0]
    folders = " ".join(job["run_dir"] for job in jobs)
    print(f"{len(jobs) - len(failed)} of {len(jobs)} seeds finished; summary: python tools/summarize_runs.py {folders}")
    if failed:
        print(f"error: seeds {sorted(failed)} failed (exit codes {[codes[s] for s in sorted(failed)]})", file=sys.stderr)
        raise SystemExit(1)
    return codes


if __name__ == "__main__":
    main()
