"""The method flags both parsers share (the 2021 scripts' and the successor's), declared once: each
method passes its own defaults, so each keeps its original's (e.g. `--seq_len` 5 and 10), and may
word a flag's help for itself. Flags whose type differs between the two originals (`--evaluate`,
`--sign`, `--freeze`, `--hidden_size`) stay in each method's parser."""

import math

from models.agent import AGENTS
from utils.data.clutter import IMAGE_SIZE
from utils.localization.actions import NUM_ACTIONS_SUPPORTED
from utils.localization.rewards import REWARDS

SHARED_FLAGS = {
    "lr": dict(type=float, help="learning rate of the net"),
    "lr_ag": dict(type=float, help="learning rate of the agent"),
    "savename": dict(help="run folder name under --saveroot ('' = the script's default name)"),
    "digit": dict(type=int, help="digit (0..9)"),
    "pretrained": dict(help="checkpoint to start from (absolute or relative to --saveroot)"),
    "seq_len": dict(type=int, help="agent steps per episode"),
    "gamma": dict(type=float, help="discount factor"),
    "steps": dict(type=int, nargs="+", help="MultiStepLR milestones (epochs) of the net"),
    "epochs": dict(type=int, help="training epochs"),
    "optimizer": dict(choices=["Adam", "SGD"], help="optimiser of the net (SGD: momentum 0.9)"),
    "optimizer_ag": dict(choices=["Adam", "SGD"], help="optimiser of the agent (SGD: momentum 0.9)"),
    "margin": dict(type=float, help="triplet margin"),
    "batch_size": dict(type=int, help="batch size"),
    "lamb": dict(type=float, help="weight of the ordinal loss"),
    "lamb_ent": dict(type=float, help="weight of the entropy bonus"),
    "log_interval": dict(type=int, help="batches between progress-bar updates"),
    "patience": dict(type=int, help="stop after more than this many epochs without a strictly better selection metric"),
    "pooling_size": dict(type=int, help="RoI pooling output size"),
    "pooling_mode": dict(choices=["align", "pool"], help="RoIAlign or RoIPool"),
    "num_act": dict(type=int, help=f"number of actions, 2..{NUM_ACTIONS_SUPPORTED} (ids in docs/method.md §5)"),
    "min_box_side": dict(type=int, help="smallest window side m of the actor"),
    "greedy": dict(type=int, choices=[0, 1], help="also evaluate with argmax actions"),
    "visualize": dict(type=int, help="draw the trajectories of this many test images (PNG and GIF)"),
}


def add_shared_flag(group, name, default, help=None, **override):
    """Declares `--name` of SHARED_FLAGS with this method's `default` (and `help`, `choices` if given)."""
    spec = {**SHARED_FLAGS[name], **override}
    if help is not None:
        spec["help"] = help
    flags = ("-b", "--batch_size") if name == "batch_size" else (f"--{name}",)
    group.add_argument(*flags, default=default, **spec)


def check_shared_flags(parser, args, positive, max_actions=NUM_ACTIONS_SUPPORTED):
    """Checks of the shared flags (`positive`: the names that must be >= 1; `max_actions`: the most
    actions the run's actor has); one line (`parser.error`, exit 2) per bad value."""
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.digit <= 9:
        parser.error(f"--digit must be in 0..9, got {args.digit}")
    if not 2 <= args.num_act <= max_actions:
        parser.error(f"--num_act must be in 2..{max_actions} (the actor's action ids 0..{max_actions - 1}), got {args.num_act}")
    for name in ("lr", "lr_ag"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):  # `<= 0` lets NaN through
            parser.error(f"--{name} must be a finite number > 0, got {getattr(args, name)}")
    if not (math.isfinite(args.margin) and args.margin >= 0):
        parser.error(f"--margin must be a finite number >= 0, got {args.margin}")
    for name in ("lamb", "lamb_ent"):
        if not math.isfinite(getattr(args, name)):
            parser.error(f"--{name} must be a finite number, got {getattr(args, name)}")
    side = getattr(args, "img_size", IMAGE_SIZE)
    if args.min_box_side < 2:  # the actor divides by window sides
        parser.error(f"--min_box_side must be in 2..{side}, got {args.min_box_side}")
    for name in ("min_box_side", "pooling_size"):
        if getattr(args, name) > side:
            parser.error(f"--{name} must be at most the image side {side}, got {getattr(args, name)}")
    if not 0 <= args.gamma <= 1:
        parser.error(f"--gamma must be in [0, 1], got {args.gamma}")
    if args.patience < 0:
        parser.error(f"--patience must be >= 0, got {args.patience}")
    if args.steps is not None and any(step < 1 for step in args.steps):
        parser.error(f"--steps must be >= 1, got {args.steps}")
    return args


def add_plugin_flags(group, agent_default, reward_help):
    """`--reward` and `--agent`, choosing from the registries (utils/localization/rewards.py REWARDS,
    models/agent.py AGENTS) as they stand when the parser is built."""
    group.add_argument("--reward", default="embed", choices=list(REWARDS), help=reward_help)
    group.add_argument("--agent", default=agent_default, choices=list(AGENTS),
                       help="policy agent (models/agent.py AGENTS): embedding reads each box's embedding (the 2021 agent), "
                            "roi its pooled RoI feature (the successor's)")
