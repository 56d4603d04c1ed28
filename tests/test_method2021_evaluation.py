"""utils/method2021/evaluation.py: the cross-digit table row against IoUs computed one image at a time,
and the seeded random-policy baseline."""

import pytest
import torch
from torchvision.ops import box_iou

from models import Agent, Net
from utils.data.datasets import ClutteredMNIST
from utils.data.loaders import make_loader
from utils.localization.actions import Actor
from utils.localization.evaluation import baseline_ious
from utils.method2021.config import rollout_config
from utils.method2021.evaluation import corloc, digit_row, final_ious
from utils.method2021.flags import parse_args


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
    whole = baseline_ious([targets for _, targets in loader], rollout_config(args), None, "cpu")["whole image"]
    assert torch.allclose(whole, torch.full((48,), 27 * 27 / (83 * 83)))
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
