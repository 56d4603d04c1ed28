"""Evaluation you can look at: figures, the cross-digit table, baselines, --reward iou, --val_split."""

import os

import numpy as np
import pytest
import torch
from conftest import load_script, write_synthetic_split
from PIL import Image
from torchvision.ops import box_iou

from models import Agent, Net
from utils.data.datasets import ClutteredMNIST
from utils.data.loaders import build_loaders, make_loader
from utils.localization.actions import Actor
from utils.localization.rollout import RolloutConfig, whole_image_ious
from utils.method2021.config import rollout_config
from utils.method2021.evaluation import corloc, digit_row, final_ious
from utils.method2021.flags import parse_args
from utils.plots import distance_scatter, embedding_projection, iou_histogram, trajectory_figure

FAST = ["--pooling_size", "3", "--batch_size", "32", "--wandb_mode", "disabled"]


def assert_png(path, min_size=(200, 150)):
    """Decodes as a PNG of at least `min_size` pixels that is not one flat colour."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert width >= min_size[0] and height >= min_size[1]
    assert pixels.std() > 5.0
    return width, height


def test_figures_are_written_and_not_blank(tmp_path):
    rng = np.random.default_rng(0)
    assert_png(iou_histogram(rng.random((200, 2)), str(tmp_path / "h.png"), "hist"))
    ious, distances = torch.rand(300), torch.rand(300) * 100
    assert_png(distance_scatter(ious, distances, -0.5, str(tmp_path / "s.png"), "scatter"))
    assert_png(embedding_projection(torch.randn(300, 16), ious, str(tmp_path / "p.png"), "pca"))
    images = rng.integers(0, 255, (3, 84, 84)).astype(np.uint8)
    boxes = torch.tensor([[0, 0, 83, 83]] * 5, dtype=torch.float32).expand(3, 5, 4)
    w, h = assert_png(trajectory_figure(images, boxes, torch.zeros(3, 4, dtype=torch.long), boxes[:, 0], str(tmp_path / "t.png")))
    assert w > h  # one column per step (5), one row per image (3)


def greedy_ious_by_hand(net, agent, dataset, seq_len):
    """Final IoUs of the greedy policy, one image at a time, with torchvision's box_iou."""
    ious = []
    for index in range(len(dataset)):
        image, target = dataset[index]
        features = net.features(image[None])
        actor, box, hidden = Actor(1), torch.tensor([[0.0, 0.0, 83.0, 83.0]]), None
        for _ in range(seq_len):
            hidden, logits, _, _ = agent(net.embed(features, box), hidden)
            box = actor.takeaction(logits.argmax(dim=1))
        ious.append(box_iou(box, target[None]).item())
    return torch.tensor(ious)


def test_table_row_agrees_with_independent_ious(synthetic_data):
    torch.manual_seed(0)
    net, agent = Net(pooling_size=3).eval(), Agent(512, 10, hidden_size=8).eval()
    args = parse_args(["--seq_len", "6", "--num_act", "10"])
    dataset = ClutteredMNIST(synthetic_data, 4, "test")
    loader = make_loader(dataset, 20, False)
    with torch.no_grad():
        expected = greedy_ious_by_hand(net, agent, dataset, args.seq_len)
        row = digit_row(net, agent, loader, "cpu", rollout_config(args), 4, 4)
    assert row["images"] == 48 and row["trained on"] == "yes"
    assert row["mean IoU greedy"] == pytest.approx(expected.mean().item(), abs=1e-5)
    assert row["CorLoc greedy"] == pytest.approx(100.0 * (expected >= 0.5).float().mean().item())
    # the whole-image box [0, 0, 83, 83] has IoU 27*27 / (83*83) with every 28x28 ground truth
    assert torch.allclose(whole_image_ious(loader), torch.full((48,), 27 * 27 / (83 * 83)))
    assert row["CorLoc whole image"] == 0.0


def test_random_policy_row_is_seeded(synthetic_data):
    args = parse_args(["--seq_len", "10", "--num_act", "10"])
    loader = make_loader(ClutteredMNIST(synthetic_data, 4, "test"), 16, False)
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        runs.append(final_ious(None, None, loader, "cpu", rollout_config(args), "random"))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert corloc(runs[0]) < 30.0  # a random walk of 10 steps rarely ends on the digit
    assert runs[0].min() >= 0.0 and runs[0].max() <= 1.0


def test_eval_digit_without_files_names_the_command(synthetic_data, tmp_path, capsys):
    joint = load_script("train-joint.py")
    flags = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--epochs", "1", "--seq_len", "3", "--max_batches", "1", *FAST]
    joint.main(flags)
    with pytest.raises(SystemExit) as stop:
        joint.main([*flags, "--evaluate", "1", "--eval_digits", "4", "8"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "8_moreclutter_data.npy" in err and "clutter_mnist_scale.py" in err and "--digits 8" in err


def test_reward_iou_trains(synthetic_data, tmp_path):
    joint = load_script("train-joint.py")
    metrics = joint.main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--reward", "iou", "--epochs", "2",
                          "--seq_len", "4", "--num_act", "10", "--hidden_size", "8", *FAST])
    assert np.isfinite(metrics["Train Pol Loss"]) and np.isfinite(metrics["Test Loc Acc"])
    # IoU gains summed over an episode are at most 1 - IoU of the first box
    assert abs(metrics["Train Rewards"]) <= 1.0
    assert os.path.isfile(tmp_path / "cluttermnist_joint" / "best_agent.pth.tar")


def test_val_split_never_reaches_training_batches(tmp_path):
    datapath = str(tmp_path)
    write_synthetic_split(datapath, 4, "train", 50, seed=0)
    write_synthetic_split(datapath, 4, "test", 10, seed=1)
    args = parse_args(["--datapath", datapath, "--val_split", "0.2", "--batch_size", "7", "--seed", "3"])
    loaders = build_loaders(args, "cpu", torch.Generator().manual_seed(0))
    as_keys = lambda images: {bytes(image.numpy().tobytes()) for image in images}
    val_keys = as_keys(torch.cat([images for images, _ in loaders["val"]]))
    seen = set()
    for _ in range(3):  # several epochs, several shuffles
        for images, _ in loaders["train"]:
            seen |= as_keys(images)
    assert len(val_keys) == 10 and len(seen) == 40 and not (seen & val_keys)


def test_val_split_selects_on_validation(synthetic_data, tmp_path):
    pretrain = load_script("ordinal-pretrain-cluttermnist-scale.py")
    pretrain.main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--val_split", "0.25", "--epochs", "3", *FAST])
    run_dir = tmp_path / "cluttermnist_pretrain"
    import json

    records = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    best = torch.load(run_dir / "best.pth.tar", weights_only=True)
    assert best["acc"] == max(r["Val Ord Acc Inst"] for r in records)
    assert all("Test Ord Acc Inst" in r for r in records)
