"""The one argument parser of both training scripts: the original's flags plus the project's own."""

import argparse
import math
import os

from utils.localization.actions import NUM_ACTIONS_SUPPORTED
from utils.data.backgrounds import BACKGROUNDS
from utils.data.datasets import IMAGE_SIZE
from utils.successor.groups import TRAIN_MODES

MAX_SEED = 2**32 - 1  # numpy's limit; the scripts also seed torch with --seed + 1


def none_or_int(text):
    """`--hidden_size None` (the original's default, spelled out) or a positive int."""
    return None if text in ("None", "none", "") else int(text)


def get_parser(description=None):
    """Every flag of the original at its default; `help` states each default."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    original = p.add_argument_group("flags of the original (defaults unchanged)")
    add = original.add_argument
    add("--lr", type=float, default=0.001, help="learning rate of the embedding net")
    add("--lr_ag", type=float, default=0.001, help="learning rate of the agent")
    add("--evaluate", type=int, default=0, choices=[0, 1], help="1: load the best checkpoint(s) and only evaluate")
    add("--savename", default="", help="run folder name under --saveroot ('' = the script's default name)")
    add("--digit", type=int, default=4, help="digit to train on (0..9)")
    add("--pretrained", default="", help="pretraining checkpoint for joint training (absolute or relative to --saveroot)")
    add("--seq_len", type=int, default=5, help="agent steps per episode")
    add("--freeze", type=int, default=1, choices=[0, 1],
        help="joint: 0 trains the net (the published recipe); 1 keeps it fixed, a capability of this project (the "
             "original's joint script refused --freeze 1)")
    add("--sparse", type=int, default=0, choices=[0, 1], help="1: every step gets the episode reward D_0 - D_T")
    add("--sign", type=int, default=0, choices=[0, 1], help="1: reward is the sign of the distance decrease")
    add("--hidden_size", type=none_or_int, default=None, help="recurrent hidden size of the agent (None: no recurrence)")
    add("--gamma", type=float, default=0.99, help="discount factor")
    add("--step", type=int, default=50, help="StepLR step (epochs) of the pretraining net")
    add("--steps", type=int, nargs="+", default=None,
        help="MultiStepLR milestones (epochs) of the joint net (default: none, a constant learning rate)")
    add("--step_ag", type=int, default=50, help="StepLR step (epochs) of the agent")
    add("--norm", type=int, default=0, choices=[0, 1], help="1: L2-normalise embeddings before distances")
    add("--epochs", type=int, default=100, help="training epochs")
    add("--optimizer", default="Adam", choices=["Adam", "SGD"], help="optimiser of the net (SGD: momentum 0.9)")
    add("--optimizer_ag", default="Adam", choices=["Adam", "SGD"], help="optimiser of the agent (SGD: momentum 0.9)")
    add("--margin", type=float, default=0.0, help="triplet margin")
    add("-b", "--batch_size", type=int, default=512, help="batch size")
    add("--lamb", type=float, default=1.0, help="weight of the ordinal loss in joint training")
    add("--lamb_ent", type=float, default=1.0, help="weight of the entropy bonus")
    add("--log_interval", type=int, default=10, help="batches between progress-bar updates")
    add("--patience", type=int, default=50,
        help="stop after more than this many epochs without a strictly better selection metric (both scripts)")
    add("--pooling_size", type=int, default=28, help="RoI pooling output size")
    add("--pooling_mode", default="align", choices=["align", "pool"], help="RoIAlign or RoIPool")
    add("--num_act", type=int, default=5, help=f"number of actions, 2..{NUM_ACTIONS_SUPPORTED} (ids in docs/method.md)")
    for unused in ("--angle_step", "--lamb_int", "--thresh", "--mode"):
        add(unused, default=None, help="accepted for old scripts; the original never read it")
    own = p.add_argument_group("flags of this project")
    add_run_flags(own, default_datapath=os.path.join("data", "Synthesis_mnist"))
    add = own.add_argument
    add("--min_box_side", type=int, default=28, help="joint: smallest window side m of the actor")
    add("--frozen_net_mode", default="train", choices=["train", "eval"],
        help="joint with --freeze 1: the frozen net's mode while training (train: dropout on, the original; "
             "eval: dropout off, as at test time)")
    add("--greedy", type=int, default=0, choices=[0, 1], help="joint: also evaluate with argmax actions")
    add("--reward", default="embed", choices=["embed", "iou"], help="joint: embedding-distance reward or oracle IoU gain")
    add("--eval_digits", type=int, nargs="+", default=None,
        help="joint --evaluate 1: digits whose test splits go into the cross-digit table (default: --digit)")
    add("--visualize", type=int, default=0, help="--evaluate 1: draw the trajectories of this many test images")
    add("--val_split", type=float, default=0.0,
        help="hold out this seeded fraction of the training images to choose the best checkpoint and stop early "
             "(0: the original's protocol, chosen on the test split)")
    add_speed_flags(p)
    return p


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


def add_speed_flags(parser):
    add = parser.add_argument_group("speed and determinism (off by default)").add_argument
    add("--deterministic", type=int, default=0, choices=[0, 1],
        help="1: deterministic algorithms on CUDA (torch, cuBLAS workspace, cuDNN): a seed gives identical runs there "
             "too, at a cost (CPU runs are always deterministic)")
    add("--amp", default="none", choices=["none", "bf16"], help="bf16: run the network under bfloat16 autocast")
    add("--compile", type=int, default=0, choices=[0, 1], help="1: torch.compile the net and the agent")


def check_common(parser, args, positive):
    """Checks of the flags every training script shares; one line (`parser.error`, exit 2) per bad value."""
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.digit <= 9:
        parser.error(f"--digit must be in 0..9, got {args.digit}")
    if not 2 <= args.num_act <= NUM_ACTIONS_SUPPORTED:
        parser.error(f"--num_act must be in 2..{NUM_ACTIONS_SUPPORTED} (the actor's action ids 0..9), got {args.num_act}")
    for name in ("lr", "lr_ag"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):  # `<= 0` lets NaN through
            parser.error(f"--{name} must be a finite number > 0, got {getattr(args, name)}")
    if not (math.isfinite(args.margin) and args.margin >= 0):
        parser.error(f"--margin must be a finite number >= 0, got {args.margin}")
    for name in ("lamb", "lamb_ent"):
        if not math.isfinite(getattr(args, name)):
            parser.error(f"--{name} must be a finite number, got {getattr(args, name)}")
    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be in 0..{MAX_SEED}, got {args.seed}")
    for name in ("min_box_side", "pooling_size"):
        if getattr(args, name) > IMAGE_SIZE:
            parser.error(f"--{name} must be at most the image side {IMAGE_SIZE}, got {getattr(args, name)}")
    if args.overwrite and (args.resume or args.evaluate):
        parser.error("--overwrite 1 replaces a run; it cannot be combined with --resume 1 or --evaluate")
    if not 0 <= args.gamma <= 1:
        parser.error(f"--gamma must be in [0, 1], got {args.gamma}")
    if args.patience < 0 or args.workers < 0 or args.max_batches < 0:
        parser.error("--patience, --workers and --max_batches must be >= 0")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available (use --device auto or cpu)")
    return args


def check_args(parser, args):
    """Rejects bad values of the 2021 scripts with one line (`parser.error`, exit 2) before any work starts."""
    check_common(parser, args, ("epochs", "batch_size", "pooling_size", "seq_len", "log_interval", "step", "step_ag", "min_box_side"))
    if args.eval_digits and any(not 0 <= d <= 9 for d in args.eval_digits):
        parser.error(f"--eval_digits must be in 0..9, got {args.eval_digits}")
    if not 0.0 <= args.val_split < 1.0:
        parser.error(f"--val_split must be in [0, 1), got {args.val_split}")
    if args.visualize < 0:
        parser.error(f"--visualize must be >= 0, got {args.visualize}")
    if args.hidden_size is not None and args.hidden_size < 1:
        parser.error(f"--hidden_size must be >= 1 or None, got {args.hidden_size}")
    return args


def parse_args(argv=None, description=None):
    parser = get_parser(description)
    return check_args(parser, parser.parse_args(argv))


# ---- the successor method's three scripts (pretrain_encoder_ordinal.py, train_agent.py, adapt_agent.py)


def sample_size(text):
    """`--sample_size`: 'whole' (None) or a positive number of training images."""
    if text == "whole":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'whole' or a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'whole' or a positive integer, got {text!r}")
    return value


def get_successor_parser(description=None):
    """The one parser of the successor's three scripts: its flags at their defaults (switches as
    there: `--evaluate`, `--sign` turn on; `--rnn`, `--freeze` turn off) plus this project's."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument_group("flags of the successor's code (defaults unchanged unless noted)").add_argument
    add("--lr", type=float, default=0.001, help="learning rate of the encoder (pretraining)")
    add("--lr_ag", type=float, default=0.001, help="learning rate of the agent")
    add("--evaluate", action="store_true", help="only the final evaluation of the run's best checkpoint")
    add("--train_mode", default="shuffle_proto", choices=TRAIN_MODES,
        help="anchor and boxes of the ordinal loss / prototype of the reward (docs/method.md)")
    add("--bg_name", default="impulse_noise", choices=BACKGROUNDS, help="background kind of the data")
    add("--dataset", default="mnist", choices=["mnist"], help="dataset (only MNIST here)")
    add("--savename", default="", help="run folder name under --saveroot ('' = the script's default name)")
    add("--epochs", type=int, default=200, help="training epochs")
    add("--optimizer", default="Adam", choices=["Adam", "SGD"], help="optimiser of the encoder (Adam: weight decay 1e-5)")
    add("--optimizer_ag", default="Adam", choices=["Adam", "SGD", "RMS"], help="optimiser of the agent (RMS: RMSprop)")
    add("--digit", type=int, default=4, help="digit (0..9)")
    add("--patience", type=int, default=100, help="stop after more than this many epochs without a better selection metric")
    add("--lamb", type=float, default=0.1, help="weight of the ordinal loss")
    add("--lamb_base", type=float, default=1.0, help="weight of the reconstruction loss")
    add("--lamb_ent", type=float, default=0.5, help="weight of the entropy bonus")
    add("--margin", type=float, default=60.0, help="triplet margin")
    add("--sample_size", type=sample_size, default=None, metavar="whole|N",
        help="few-shot training subset: the first N of a seeded permutation of the digit's training images (default: whole)")
    add("-b", "--batch_size", type=int, default=512, help="batch size")
    add("--steps", type=int, nargs="+", default=[80], help="MultiStepLR milestones of the encoder (epochs)")
    add("--steps_ag", type=int, default=80, help="StepLR step of the agent (epochs)")
    add("--pooling_size", type=int, default=7, help="RoI pooling output size")
    add("--pooling_mode", default="align", choices=["align", "pool"], help="RoIAlign or RoIPool")
    add("--log_interval", type=int, default=10, help="batches between progress-bar updates")
    add("--samples_per_class", type=int, default=5, help="K, images per group (prototype)")
    add("--support_size", type=int, default=5, help="adaptation: labelled target images forming the prototype")
    add("--rnn", action="store_false", help="giving it asks for the feed-forward agent, which the original cannot run (refused)")
    add("--hidden_size", type=int, default=48, help="recurrent hidden size of the agent")
    add("--pretrained", default="",
        help="encoder checkpoint (agent training; adaptation: overrides the encoder the agent was trained with)")
    add("--pretrained_agent", default="", help="adaptation: the trained agent's checkpoint")
    add("--backbone", default="", help="accepted for old scripts; unused")
    add("--freeze", action="store_false", help="giving it unfreezes the encoder, which has no loss here (refused)")
    add("--img_size", type=int, default=84, choices=[84], help="image side")
    add("--min_box_side", type=int, default=28, help="smallest window side m of the actor (inclusive)")
    add("--sign", action="store_true", help="reward is the sign of the distance decrease")
    add("--seq_len", type=int, default=10, help="agent steps per episode")
    add("--num_act", type=int, default=10,
        help=f"number of actions, 2..{NUM_ACTIONS_SUPPORTED} (the original's default 14 includes aspect-ratio ids no script uses)")
    add("--gamma", type=float, default=0.99, help="discount factor")
    add("--dim", type=int, default=512, help="embedding dimension")
    add("--dim_ag", type=int, default=64, choices=[64], help="agent input channels (the encoder's)")
    add("--sel_cls", default=None, help="accepted for old scripts (COCO); unused")
    own = p.add_argument_group("flags of this project")
    add_run_flags(own, default_datapath=os.path.join("data", "corrupted_mnist"))
    own.add_argument("--greedy", type=int, default=0, choices=[0, 1], help="agent scripts: also evaluate with argmax actions")
    add_speed_flags(p)
    return p


def check_successor_args(parser, args, grouped=True):
    """As check_args; `grouped` (encoder pretraining, agent training): batches form groups of K."""
    check_common(parser, args, ("epochs", "batch_size", "pooling_size", "seq_len", "log_interval", "steps_ag", "min_box_side",
                                "samples_per_class", "support_size", "hidden_size", "dim"))
    if not args.rnn:
        parser.error("--rnn builds the original's feed-forward agent, which its training loop cannot run; not supported")
    if not args.freeze:
        parser.error("--freeze turns the encoder's training on, but nothing here trains it (no loss reaches it); not supported")
    if grouped and args.samples_per_class > args.batch_size:
        parser.error(f"--samples_per_class {args.samples_per_class} is larger than --batch_size {args.batch_size}: no group fits")
    if grouped and args.sample_size is not None and args.sample_size < args.samples_per_class:
        parser.error(f"--sample_size {args.sample_size} is smaller than --samples_per_class {args.samples_per_class}")
    if any(step < 1 for step in args.steps):
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if not math.isfinite(args.lamb_base):
        parser.error(f"--lamb_base must be a finite number, got {args.lamb_base}")
    return args


def parse_successor_args(argv=None, description=None, grouped=True):
    parser = get_successor_parser(description)
    return check_successor_args(parser, parser.parse_args(argv), grouped)
