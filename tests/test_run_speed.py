"""utils/run/speed.py: --compile's failure to compile is one line (a UserError), other errors pass."""

import pytest
import torch

from utils.errors import CompileFailed
from utils.run import speed


class FakeCompilerError(Exception):
    """Stands for torch._dynamo's BackendCompilerFailed (no working C++ compiler)."""


FakeCompilerError.__module__ = "torch._dynamo.exc"


def test_a_compile_failure_is_one_line(monkeypatch):
    def broken_compile(function, dynamic=True):
        def run(*args, **kwargs):
            raise FakeCompilerError("backend='inductor' raised:\nCalledProcessError: g++ not found")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    net = torch.nn.Linear(2, 2)
    net.forward_compiled = speed.compiled(net.forward)
    with pytest.raises(CompileFailed, match=r"--compile 1: torch.compile failed \(backend='inductor' raised:\); run without --compile"):
        net.forward_compiled(torch.zeros(1, 2))
    monkeypatch.setattr(torch, "compile", lambda function, dynamic=True: lambda *a: (_ for _ in ()).throw(ValueError("shape")))
    with pytest.raises(ValueError, match="shape"):  # a real error of the model is not hidden
        speed.compiled(net.forward)(torch.zeros(1, 2))


def test_precision_autocasts_only_for_bf16():
    assert speed.Precision().autocast("cpu").__class__.__name__ == "nullcontext"
    assert isinstance(speed.Precision("bf16").autocast("cpu"), torch.autocast)
