"""The successor method's settings, frozen and built once from the flags (docs/method.md §10)."""

from dataclasses import dataclass

from utils.localization.rollout import RolloutConfig
from utils.run.loop import LoopConfig
from utils.run.speed import Precision


@dataclass(frozen=True)
class EncoderConfig:
    """One epoch of encoder pretraining."""

    group_size: int = 10  # K
    train_mode: str = "shuffle_proto"
    margin: float = 60.0
    lamb: float = 0.1  # ordinal loss weight
    lamb_base: float = 1.0  # reconstruction loss weight (an encoder without a decoder has no such loss)
    image_size: int = 84  # S: which anchors the pair sampler draws from (utils/successor/anchors.py)
    maps_given: bool = False  # batches hold the frozen base's maps, not images (utils/successor/data.py base_map_loaders)
    precision: Precision = Precision()
    loop: LoopConfig = LoopConfig()

    @classmethod
    def from_args(cls, args):
        return cls(group_size=args.samples_per_class, train_mode=args.train_mode, margin=args.margin, lamb=args.lamb,
                   lamb_base=args.lamb_base, image_size=args.img_size, precision=Precision(args.amp), loop=LoopConfig.from_args(args))


@dataclass(frozen=True)
class AgentConfig:
    """One epoch of agent training (`group_size` K, `train_mode`) or adaptation (a fixed `prototype`)."""

    rollout: RolloutConfig = RolloutConfig(inclusive=True)
    group_size: int = 5
    train_mode: str = "shuffle_proto"
    gamma: float = 0.99
    lamb_ent: float = 0.5
    sign: bool = False
    sparse: bool = False  # the successor has no --sparse; the reward functions read it (utils/localization/rewards.py)
    reward: str = "embed"  # --reward: a name of utils/localization/rewards.py REWARDS
    loop: LoopConfig = LoopConfig()

    @classmethod
    def from_args(cls, args):
        rollout = RolloutConfig(seq_len=args.seq_len, num_act=args.num_act, min_box_side=args.min_box_side, norm=False,
                                precision=Precision(args.amp), inclusive=True, image_size=args.img_size)
        return cls(rollout=rollout, group_size=args.samples_per_class, train_mode=args.train_mode, gamma=args.gamma,
                   lamb_ent=args.lamb_ent, sign=bool(args.sign), reward=args.reward, loop=LoopConfig.from_args(args))
