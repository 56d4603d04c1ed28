"""Small, frozen settings objects built once from the flags: the engine, the rollout and the
evaluation read these instead of the whole argparse namespace (benchmarks and notebooks build
them directly)."""

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """How the network runs: `amp` None (float32) or "bf16" (autocast to bfloat16)."""

    amp: str | None = None  # None or "none": float32

    def autocast(self, device):
        """The autocast context of this precision on `device` (a no-op for float32)."""
        if self.amp in (None, "none"):
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


@dataclass(frozen=True)
class RolloutConfig:
    """One episode: `seq_len` steps of `num_act` actions from the whole image (docs/method.md, "Rollout")."""

    seq_len: int = 10
    num_act: int = 10
    min_box_side: int = 28
    norm: bool = False  # L2-normalise embeddings before distances
    precision: Precision = Precision()
    inclusive: bool = False  # the successor's actor (inclusive widths, start [0, 0, 83, 83])

    @classmethod
    def from_args(cls, args):
        return cls(args.seq_len, args.num_act, args.min_box_side, bool(args.norm), Precision(args.amp))


@dataclass(frozen=True)
class LoopConfig:
    """What every epoch loop reads: progress and non-finite checks every `log_interval` batches,
    `max_batches` > 0 cuts epochs short (smoke runs)."""

    log_interval: int = 10
    max_batches: int = 0


@dataclass(frozen=True)
class PretrainConfig:
    """One epoch of ordinal pretraining."""

    margin: float = 0.0
    norm: bool = False
    precision: Precision = Precision()
    loop: LoopConfig = LoopConfig()

    @classmethod
    def from_args(cls, args):
        return cls(args.margin, bool(args.norm), Precision(args.amp), LoopConfig(args.log_interval, args.max_batches))


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
            rollout=RolloutConfig.from_args(args),
            margin=args.margin,
            lamb=args.lamb,
            lamb_ent=args.lamb_ent,
            gamma=args.gamma,
            sign=bool(args.sign),
            sparse=bool(args.sparse),
            reward=args.reward,
            net_trains_in_train_mode=not (args.freeze and args.frozen_net_mode == "eval"),
            loop=LoopConfig(args.log_interval, args.max_batches),
        )
