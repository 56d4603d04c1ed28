"""The 2021 method's settings, frozen and built once from the flags: its epochs and evaluation read
these instead of the whole argparse namespace (benchmarks and notebooks build them directly)."""

from dataclasses import dataclass

from utils.localization.rollout import RolloutConfig
from utils.run.loop import LoopConfig
from utils.run.speed import Precision


def rollout_config(args):
    """The 2021 rollout: `--seq_len` steps of `--num_act` actions, the exclusive actor."""
    return RolloutConfig(seq_len=args.seq_len, num_act=args.num_act, min_box_side=args.min_box_side, norm=bool(args.norm),
                         precision=Precision(args.amp))


@dataclass(frozen=True)
class PretrainConfig:
    """One epoch of ordinal pretraining."""

    margin: float = 0.0
    norm: bool = False
    precision: Precision = Precision()
    loop: LoopConfig = LoopConfig()

    @classmethod
    def from_args(cls, args):
        return cls(margin=args.margin, norm=bool(args.norm), precision=Precision(args.amp), loop=LoopConfig.from_args(args))


@dataclass(frozen=True)
class JointConfig:
    """One epoch of joint training: rollout, reward, REINFORCE and ordinal-loss settings."""

    rollout: RolloutConfig = RolloutConfig()
    margin: float = 0.0
    lamb: float = 1.0  # weight of the ordinal loss
    lamb_ent: float = 1.0
    gamma: float = 0.99
    sign: bool = False
    sparse: bool = False
    reward: str = "embed"  # or "iou" (oracle)
    net_trains_in_train_mode: bool = True  # False: a frozen net stays in eval mode (--frozen_net_mode eval)
    loop: LoopConfig = LoopConfig()

    @classmethod
    def from_args(cls, args):
        return cls(
            rollout=rollout_config(args),
            margin=args.margin,
            lamb=args.lamb,
            lamb_ent=args.lamb_ent,
            gamma=args.gamma,
            sign=bool(args.sign),
            sparse=bool(args.sparse),
            reward=args.reward,
            net_trains_in_train_mode=not (args.freeze and args.frozen_net_mode == "eval"),
            loop=LoopConfig.from_args(args),
        )
