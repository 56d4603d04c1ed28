"""The one parser of both 2021 scripts (ordinal pretraining and joint training): the original's flags
at its defaults (docs/method.md §9) plus the project's own."""

import argparse
import os

from models.agent import AGENTS, EMBEDDING
from utils.localization.flags import add_plugin_flags, add_shared_flag, check_shared_flags
from utils.run.flags import add_run_flags, add_speed_flags, check_run_flags

# the original's defaults of the flags both methods share
DEFAULTS = dict(lr=0.001, lr_ag=0.001, savename="", digit=4, pretrained="", seq_len=5, gamma=0.99, steps=None, epochs=100,
                optimizer="Adam", optimizer_ag="Adam", margin=0.0, batch_size=512, lamb=1.0, lamb_ent=1.0, log_interval=10,
                patience=50, pooling_size=28, pooling_mode="align", num_act=5)
# flags that may change when a run resumes (besides the run flags): evaluation and input paths only
FREE_FLAGS = ("visualize", "eval_digits", "pretrained")
# the metrics that may choose the best checkpoint (docs/method.md §4, §7): kept at their best in wandb summaries
SELECTION = {"pretrain": ("Test Ord Acc Inst", "Val Ord Acc Inst"), "joint": ("Test Loc Acc", "Val Loc Acc")}


def none_or_int(text):
    """`--hidden_size None` (the original's default, spelled out) or a positive int."""
    return None if text in ("None", "none", "") else int(text)


def get_parser(description=None):
    """Every flag of the original at its default; `help` states each default."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    original = p.add_argument_group("flags of the original (defaults unchanged)")
    shared = lambda name, **kw: add_shared_flag(original, name, DEFAULTS[name], **kw)
    add = original.add_argument
    shared("lr", help="learning rate of the embedding net")
    shared("lr_ag")
    add("--evaluate", type=int, default=0, choices=[0, 1], help="1: load the best checkpoint(s) and only evaluate")
    shared("savename")
    shared("digit", help="digit to train on (0..9)")
    shared("pretrained", help="pretraining checkpoint for joint training (absolute or relative to --saveroot)")
    shared("seq_len")
    add("--freeze", type=int, default=1, choices=[0, 1],
        help="joint: 0 trains the net (the published recipe); 1 keeps it fixed, a capability of this project (the "
             "original's joint script refused --freeze 1)")
    add("--sparse", type=int, default=0, choices=[0, 1], help="1: every step gets the episode reward D_0 - D_T")
    add("--sign", type=int, default=0, choices=[0, 1], help="1: reward is the sign of the distance decrease")
    add("--hidden_size", type=none_or_int, default=None, help="recurrent hidden size of the agent (None: no recurrence)")
    shared("gamma")
    add("--step", type=int, default=50, help="StepLR step (epochs) of the pretraining net")
    shared("steps", help="MultiStepLR milestones (epochs) of the joint net (default: none, a constant learning rate)")
    add("--step_ag", type=int, default=50, help="StepLR step (epochs) of the agent")
    add("--norm", type=int, default=0, choices=[0, 1], help="1: L2-normalise embeddings before distances")
    shared("epochs")
    shared("optimizer", help="optimiser of the net (SGD: momentum 0.9)")
    shared("optimizer_ag")
    shared("margin")
    shared("batch_size")
    shared("lamb", help="weight of the ordinal loss in joint training")
    shared("lamb_ent")
    shared("log_interval")
    shared("patience", help="stop after more than this many epochs without a strictly better selection metric (both scripts)")
    shared("pooling_size")
    shared("pooling_mode")
    shared("num_act")
    for unused in ("--angle_step", "--lamb_int", "--thresh", "--mode"):
        add(unused, default=None, help="accepted for old scripts; the original never read it")
    own = p.add_argument_group("flags of this project")
    add_run_flags(own, default_datapath=os.path.join("data", "Synthesis_mnist"))
    add = own.add_argument
    add_shared_flag(own, "min_box_side", 28, help="joint: smallest window side m of the actor")
    add("--frozen_net_mode", default="train", choices=["train", "eval"],
        help="joint with --freeze 1: the frozen net's mode while training (train: dropout on, the original; "
             "eval: dropout off, as at test time)")
    add_shared_flag(own, "greedy", 0, help="joint: also evaluate with argmax actions")
    add_plugin_flags(own, "embedding", "joint: embed (the embedding-distance reward) or iou (oracle IoU gain)")
    add("--eval_digits", type=int, nargs="+", default=None,
        help="joint --evaluate 1: digits whose test splits go into the cross-digit table (default: --digit)")
    add_shared_flag(own, "visualize", 0, help="--evaluate 1: draw the trajectories of this many test images (PNG and GIF)")
    add("--val_split", type=float, default=0.0,
        help="hold out this seeded fraction of the training images to choose the best checkpoint and stop early "
             "(0: the original's protocol, chosen on the test split)")
    add_speed_flags(p)
    return p


def check_args(parser, args):
    """Rejects bad values of the 2021 scripts with one line (`parser.error`, exit 2) before any work starts."""
    check_shared_flags(parser, args, ("epochs", "batch_size", "pooling_size", "seq_len", "log_interval", "step", "step_ag",
                                      "min_box_side"))
    check_run_flags(parser, args)
    if args.eval_digits and any(not 0 <= d <= 9 for d in args.eval_digits):
        parser.error(f"--eval_digits must be in 0..9, got {args.eval_digits}")
    if not 0.0 <= args.val_split < 1.0:
        parser.error(f"--val_split must be in [0, 1), got {args.val_split}")
    if args.visualize < 0:
        parser.error(f"--visualize must be >= 0, got {args.visualize}")
    if args.hidden_size is not None and args.hidden_size < 1:
        parser.error(f"--hidden_size must be >= 1 or None, got {args.hidden_size}")
    if AGENTS[args.agent].reads != EMBEDDING:
        parser.error(f"--agent {args.agent} reads RoI features; the 2021 net gives box embeddings only (use an agent that reads "
                     f"{EMBEDDING!r}, e.g. --agent embedding)")
    return args


def parse_args(argv=None, description=None):
    parser = get_parser(description)
    return check_args(parser, parser.parse_args(argv))
