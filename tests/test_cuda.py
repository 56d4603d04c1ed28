"""CUDA: a short pretraining + joint run, seeded reproducibility with --deterministic 1, the bf16
AMP path. Skipped without CUDA. (tests/e2e/test_robustness.py runs kill -9 + --resume 1 on CUDA too.)
Whole-script runs: marked slow as well as cuda."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, load_script, read_metrics

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"), pytest.mark.cuda, pytest.mark.slow]
PRETRAIN, JOINT = "ordinal-pretrain-cluttermnist-scale.py", "train-joint.py"
SMALL = ["--pooling_size", "5", "--batch_size", "32", "--wandb_mode", "disabled", "--device", "cuda", "--margin", "60"]
AGENT = ["--seq_len", "6", "--hidden_size", "16", "--num_act", "10", "--freeze", "0"]


def finite(metrics):
    return all(value == value and abs(value) != float("inf") for value in metrics.values() if isinstance(value, float))


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_pretrain_then_joint_on_cuda(synthetic_data, tmp_path, amp):
    common = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--amp", amp, *SMALL]
    pre = load_script(PRETRAIN).main([*common, "--savename", "pre", "--epochs", "2"])
    assert finite(pre) and pre["Test Ord Acc Inst"] > 0
    joint = load_script(JOINT).main([*common, *AGENT, "--savename", "joint", "--pretrained", "pre/best.pth.tar", "--epochs", "2",
                                     "--greedy", "1"])
    assert finite(joint) and 0 <= joint["Test Loc Acc"] <= 100 and "Test Loc Acc Greedy" in joint
    state = torch.load(os.path.join(tmp_path, "joint", "best_net.pth.tar"), weights_only=True)
    assert all(tensor.device.type == "cpu" or tensor.is_cuda for tensor in state["state_dict"].values())


def test_deterministic_runs_are_identical_on_cuda(synthetic_data, tmp_path):
    """Two seeded CUDA runs with --deterministic 1 (fresh processes: cuBLAS reads its workspace setting
    at start) log identical metrics."""
    for name in ("a", "b"):
        for script, extra in ((PRETRAIN, ["--epochs", "2"]), (JOINT, [*AGENT, "--epochs", "2", "--pretrained", f"{name}_pre/best.pth.tar"])):
            savename = f"{name}_pre" if script == PRETRAIN else f"{name}_joint"
            command = [sys.executable, os.path.join(ROOT, script), "--datapath", synthetic_data, "--saveroot", str(tmp_path),
                       "--savename", savename, "--seed", "5", "--deterministic", "1", *SMALL, *extra]
            done = subprocess.run(command, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    for kind in ("pre", "joint"):
        assert read_metrics(str(tmp_path / f"a_{kind}")) == read_metrics(str(tmp_path / f"b_{kind}"))


def test_real_image_parts_on_cuda_equal_the_cpu():
    """The real-image path on CUDA: the 14-action actor at 224 steps to the CPU's windows, the 224 anchors
    and pair draws stay on the device, and the VGG16 encoder's embeddings match the CPU's."""
    from models import VGGRoIEncoder
    from utils.localization.actions import Actor
    from utils.successor.anchors import draw_anchor_pairs, real_anchors

    generator = torch.Generator().manual_seed(0)
    actions = torch.randint(14, (10, 64), generator=generator)
    cpu, gpu = (Actor(64, min_box_side=40, image_size=224, inclusive=True, num_actions=14, device=d) for d in ("cpu", "cuda"))
    for step in actions:
        assert torch.equal(cpu.step(step), gpu.step(step.cuda()).cpu())
    targets = torch.tensor([[10.0, 20.0, 150.0, 200.0], [0.0, 0.0, 223.0, 223.0]], device="cuda")
    boxes, ious = draw_anchor_pairs(targets, torch.Generator(device="cuda").manual_seed(0), real_anchors(224, "cuda"))
    assert boxes.is_cuda and ious.is_cuda and real_anchors(224, "cuda").shape == (29824, 4)
    torch.manual_seed(0)
    encoder = VGGRoIEncoder(dim=64).eval()
    images = torch.randn(2, 3, 224, 224, generator=generator)
    rois = torch.tensor([[0.0, 10.0, 20.0, 150.0, 200.0], [1.0, 0.0, 0.0, 223.0, 223.0]])
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # TF32 convolutions would round more
        expected = encoder(images, rois)
        got = encoder.cuda()(images.cuda(), rois.cuda()).cpu()
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-3)
