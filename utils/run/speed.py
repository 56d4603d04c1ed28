"""Speed and determinism options of every training script (`--amp`, `--compile`, `--deterministic`)."""

import contextlib
import os
from dataclasses import dataclass

import torch

from utils.errors import CompileFailed


@dataclass(frozen=True)
class Precision:
    """How the network runs: `amp` None (float32) or "bf16" (autocast to bfloat16)."""

    amp: str | None = None  # None or "none": float32

    def autocast(self, device):
        """The autocast context of this precision on `device` (a no-op for float32)."""
        if self.amp in (None, "none"):
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def set_deterministic(enabled):
    """`--deterministic 1`: deterministic algorithms everywhere (torch, cuBLAS, cuDNN). Call before
    any CUDA work: cuBLAS reads its workspace setting when it starts."""
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def compiled(function):
    """torch.compile(function), whose failure to compile (no working C++ compiler, an unsupported op)
    is a one-line UserError, not a traceback from inside the compiler at the first batch."""
    graph = torch.compile(function, dynamic=True)

    def call(*args, **kwargs):
        try:
            return graph(*args, **kwargs)
        except Exception as error:
            if not type(error).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise CompileFailed(f"--compile 1: torch.compile failed ({reason}); run without --compile") from None

    return call


def compile_models(net=None, agent=None):
    """`--compile 1`: torch.compile what the training loop calls (the net's `features` and `embed`, the
    agent's batched `sequence_logits`) as instance attributes, so state_dict keys stay unchanged."""
    if net is not None:
        net.features = compiled(net.features)
        net.embed = compiled(net.embed)
    if agent is not None:
        agent.sequence_logits = compiled(agent.sequence_logits)
