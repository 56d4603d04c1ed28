"""The run flags every training script has (paths, seed, device, logging, run folder) and the speed
options, with their checks; each method's parser (utils/method2021/flags.py, utils/successor/flags.py)
adds them to its own."""

import torch

MAX_SEED = 2**32 - 1  # numpy's limit; the scripts also seed torch with --seed + 1


def add_run_flags(group, default_datapath):
    """Flags every training script of this project has: paths, seed, device, logging, run folder."""
    add = group.add_argument
    add("--datapath", default=default_datapath, help="data folder (made by clutter_mnist_scale.py)")
    add("--saveroot", default="results", help="runs live in <saveroot>/<savename>")
    add("--seed", type=int, default=0, help=f"seed of every random stream, 0..{MAX_SEED}")
    add("--workers", type=int, default=0, help="DataLoader worker processes (0: load in the main process)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when available")
    add("--wandb_project", default="ordinal-localization", help="wandb project")
    add("--wandb_mode", default=None, choices=["online", "offline", "disabled"],
        help="default: $WANDB_MODE, else online when logged in, else offline; never prompts")
    add("--resume", type=int, default=0, choices=[0, 1],
        help="1: continue the run in <saveroot>/<savename> from its resume.pth.tar (a fresh start when there is none)")
    add("--overwrite", type=int, default=0, choices=[0, 1],
        help="1: replace the run in <saveroot>/<savename>; the old run is moved to <savename>.old-<timestamp> "
             "(0: refuse to start in a folder that holds a run)")
    add("--max_batches", type=int, default=0, help="stop each epoch after this many batches (0: all; smoke runs)")
    add("--log_all", type=int, default=0, choices=[0, 1],
        help="1: print every figure of an epoch on its line (0: the selection metric, the main figures, loss, lr, time; "
             "every figure always goes to metrics.jsonl and wandb)")


def add_speed_flags(parser):
    add = parser.add_argument_group("speed and determinism (off by default)").add_argument
    add("--deterministic", type=int, default=0, choices=[0, 1],
        help="1: deterministic algorithms on CUDA (torch, cuBLAS workspace, cuDNN): a seed gives identical runs there "
             "too, at a cost (CPU runs are always deterministic)")
    add("--amp", default="none", choices=["none", "bf16"], help="bf16: run the network under bfloat16 autocast")
    add("--compile", type=int, default=0, choices=[0, 1], help="1: torch.compile the net and the agent")


def check_run_flags(parser, args):
    """Checks of the run flags; one line (`parser.error`, exit 2) per bad value."""
    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be in 0..{MAX_SEED}, got {args.seed}")
    if args.overwrite and (args.resume or args.evaluate):
        parser.error("--overwrite 1 replaces a run; it cannot be combined with --resume 1 or --evaluate")
    if args.workers < 0 or args.max_batches < 0:
        parser.error("--workers and --max_batches must be >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (use --device auto or cpu)")
    return args
