"""utils/localization/frozen.py: the frozen-encoder component keeps the maths (its outputs equal the
plain path's in float64, with and without the box memo, evaluation rolled out in chunks or batch by
batch), checks its own assumption, and its plan follows from device and flags alone."""

import pytest
import torch
from conftest import TinyImages, rows_loader

import utils.successor.epochs as epochs
from models import RoIAgent, RoIEncoder
from utils.errors import FrozenEncoderChanged
from utils.localization.frozen import FrozenEncoder, SpeedPlan
from utils.localization.rollout import RolloutConfig
from utils.run.loop import LoopConfig
from utils.run.speed import Precision
from utils.successor.config import AgentConfig

CONFIG = AgentConfig(rollout=RolloutConfig(seq_len=4, inclusive=True), group_size=4, loop=LoopConfig())
PLAIN = SpeedPlan(cache_maps=False, memo=False)


def models(dtype=torch.float64):
    torch.manual_seed(0)
    encoder = RoIEncoder(pooling_size=3, dim=16).to(dtype).requires_grad_(False).eval()
    return encoder, RoIAgent(pooling_size=3, hidden_size=8).to(dtype)


def epochs_of(plan, max_images, monkeypatch, dtype=torch.float64):
    """Two training epochs and two sampled + greedy evaluation passes of a fresh agent -> [(metrics, final IoUs)]."""
    monkeypatch.setattr(epochs, "MAX_ROLLOUT_IMAGES", max_images)
    encoder, agent = models(dtype)
    images = TinyImages(32, seed=1, dtype=dtype)
    frozen = FrozenEncoder(encoder, "cpu", Precision(), 8, plan, CONFIG.rollout.seq_len + 1)
    optimizer = torch.optim.SGD(agent.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    out = []
    for epoch in range(2):
        train = epochs.agent_epoch(frozen, agent, rows_loader(images, 8, shuffle=True, seed=epoch), "cpu", generator, CONFIG, epoch,
                                   optimizer)
        out.append(train)
        with torch.no_grad():
            for policy in ("sample", "greedy"):
                out.append(epochs.agent_epoch(frozen, agent, rows_loader(images, 8), "cpu", generator, CONFIG, epoch, policy=policy))
    return out


def assert_close(run, reference, rel=1e-9):
    for (metrics, extras), (expected, expected_extras) in zip(run, reference):
        assert metrics.keys() == expected.keys()
        for name in metrics:
            assert metrics[name] == pytest.approx(expected[name], rel=rel, abs=1e-12), name
        assert torch.allclose(extras["final_ious"], expected_extras["final_ious"], rtol=rel, atol=1e-12)


@pytest.mark.parametrize("plan", [SpeedPlan(cache_maps=True, memo=False), SpeedPlan(cache_maps=True, memo=True)])
def test_the_component_keeps_the_maths_in_float64(plan, monkeypatch):
    """Cached maps and ground-truth embeddings, the box memo and evaluation rolled out 24 images at a
    time give the figures of encoding every batch and rolling out batch by batch (1e-9 relative)."""
    reference = epochs_of(PLAIN, 8, monkeypatch)
    assert_close(epochs_of(plan, 24, monkeypatch), reference)


def test_the_memo_reads_boxes_back():
    encoder, agent = models()
    images = TinyImages(16, seed=2, dtype=torch.float64)
    frozen = FrozenEncoder(encoder, "cpu", Precision(), 8, SpeedPlan(True, True), CONFIG.rollout.seq_len + 1)
    for epoch in range(2):
        with torch.no_grad():
            epochs.agent_epoch(frozen, agent, rows_loader(images, 8), "cpu", None, CONFIG, epoch, policy="greedy")
    memo = frozen.memo(images)
    assert memo.lookups == 2 * 16 * 5 and memo.hits >= 16 * 5  # the second greedy pass revisits every box


def test_the_component_stops_when_the_encoder_changes():
    encoder, _ = models()
    frozen = FrozenEncoder(encoder, "cpu", Precision(), 8, SpeedPlan(True, False), 5)
    frozen.check()
    encoder.train()
    with pytest.raises(FrozenEncoderChanged, match="train mode"):
        frozen.check()
    encoder.eval()
    with torch.no_grad():
        next(encoder.parameters()).add_(1e-3)
    with pytest.raises(FrozenEncoderChanged, match="parameters changed"):
        frozen.check()


def test_the_plan_follows_from_device_and_flags():
    assert SpeedPlan.from_flags(1, 1, "cpu", "none") == SpeedPlan(True, True)
    assert SpeedPlan.from_flags(1, 1, "cuda", "none") == SpeedPlan(True, False)  # the memo's lookup would wait for the device
    assert SpeedPlan.from_flags(1, 1, "cpu", "bf16") == SpeedPlan(True, False)
    assert SpeedPlan.from_flags(0, 1, "cpu", "none") == SpeedPlan(False, False)
    assert SpeedPlan.from_flags(1, 0, "cpu", "none") == SpeedPlan(True, False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.cuda
def test_the_component_on_cuda_gives_the_cpu_figures():
    """The same component on CUDA (no memo there): float64 figures equal the CPU's plain path."""
    encoder, agent = models()
    images = TinyImages(24, seed=3, dtype=torch.float64)
    figures = []
    for device, plan in (("cpu", PLAIN), ("cuda", SpeedPlan.from_flags(1, 1, "cuda", "none"))):
        frozen = FrozenEncoder(encoder.to(device), device, Precision(), 8, plan, CONFIG.rollout.seq_len + 1)
        with torch.no_grad():
            figures.append(epochs.agent_epoch(frozen, agent.to(device), rows_loader(images, 8), device, None, CONFIG, 0, policy="greedy"))
    assert_close([figures[1]], [figures[0]], rel=1e-7)
