"""utils/localization/together.py and the batched evaluation of utils/successor/epochs.py: which batches
roll out together, and that an evaluation pass rolling them out together gives the figures, final IoUs
and draws of the pass that rolls out batch by batch, bit for bit (with and without a BoxCache); an
agent whose rows depend on the batch makes the probe fail, and the batches then roll out alone."""

import pytest
import torch

from models import RoIAgent, RoIEncoder
from utils.localization.rollout import FeatureRows, RolloutConfig
from utils.localization.together import RolloutGroups, groups
from utils.run.loop import LoopConfig
from utils.run.speed import Precision
from utils.successor.config import AgentConfig
from utils.successor.data import EncodedImages
from utils.successor.epochs import agent_epoch

CONFIG = AgentConfig(rollout=RolloutConfig(seq_len=4, num_act=10, inclusive=True), group_size=4, loop=LoopConfig(log_interval=2))


class Images:
    """A split as the successor's datasets give it: dataset[indices] -> (images, targets)."""

    def __init__(self, count, seed):
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.rand(count, 1, 84, 84, generator=generator)
        corner = torch.randint(0, 50, (count, 2), generator=generator).float()
        self.targets = torch.cat([corner, corner + 27], dim=1)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.targets[index]


def loader_of(encoded, batch_size):
    batches = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(len(encoded))), batch_size, drop_last=False)
    return torch.utils.data.DataLoader(encoded, sampler=batches, batch_size=None)


def models(agent_class=RoIAgent):
    torch.manual_seed(0)
    return RoIEncoder(pooling_size=7, dim=32).requires_grad_(False).eval(), agent_class(pooling_size=7, hidden_size=16)


def test_groups_take_consecutive_batches_of_one_size_and_cache():
    maps, other = torch.zeros(90, 1, 1, 1), torch.zeros(90, 1, 1, 1)
    rows = lambda start, count: (FeatureRows(maps, torch.arange(start, start + count)), None)
    batches = [rows(0, 16), rows(16, 16), rows(32, 16), (FeatureRows(other, torch.arange(16)), None), rows(48, 16), rows(64, 12),
               (torch.zeros(4, 1, 84, 84), None), rows(0, 16), rows(16, 16), rows(0, 8), rows(8, 8), rows(0, 16), rows(8, 16)]
    assert list(groups(batches, max_images=32)) == [[0, 1], [2], [3], [4], [5], [6], [7, 8], [9], [10], [11], [12]]  # 11, 12 overlap
    assert list(groups(batches, max_images=1024))[:2] == [[0, 1, 2], [3]]


def passes(encoder, agent, batched, box_steps, prototype=None):
    """Two epochs of sampled and greedy evaluation passes over 50 images in batches of 16 (the last of 2)."""
    encoded = EncodedImages(Images(50, seed=1), encoder, 16, "cpu", Precision(), box_steps, batched_eval=batched)
    loader, generator, out = loader_of(encoded, 16), torch.Generator().manual_seed(7), []
    for epoch in range(2):
        for policy in ("sample", "greedy"):
            with torch.no_grad():
                out.append(agent_epoch(encoder, agent, loader, "cpu", generator, CONFIG, epoch, policy=policy, prototype=prototype))
    return out, encoded, generator.get_state()


@pytest.mark.parametrize("box_steps", [0, CONFIG.rollout.seq_len + 1])
@pytest.mark.parametrize("anchors", ["groups", "prototype"])
def test_batched_evaluation_gives_the_figures_of_batch_by_batch(box_steps, anchors):
    encoder, agent = models()
    prototype = torch.randn(32, generator=torch.Generator().manual_seed(2)) if anchors == "prototype" else None
    alone, _, alone_draws = passes(encoder, agent, False, box_steps, prototype)
    together, encoded, together_draws = passes(encoder, agent, True, box_steps, prototype)
    for (metrics, ious), (expected_metrics, expected_ious) in zip(together, alone):
        assert metrics == expected_metrics and torch.equal(ious, expected_ious)
    assert torch.equal(together_draws, alone_draws)  # the same draws, in the same order
    groups_ = encoded.rollout_groups
    assert groups_.verdicts == {(3, 16): True} and (groups_.batches, groups_.rollouts) == (4 * 3, 4)  # three batches of 16 a pass, the last alone
    if box_steps:
        assert encoded.box_cache.usable and encoded.box_cache.hits > 0
    assert len(encoded.kept) == (3 if prototype is None else 0)  # each full batch's ground-truth embeddings, computed once


class SizeDependentAgent(RoIAgent):
    """An agent whose logits change with the batch size (as a matrix product's rows can)."""

    def step(self, roi_feature, h_prev=None):
        h, logits = super().step(roi_feature, h_prev)
        return h, logits + (1e-3 if roi_feature.shape[0] != 16 else 0.0)


def test_a_probe_that_finds_other_bits_rolls_the_batches_out_alone(capsys):
    encoder, agent = models(SizeDependentAgent)
    alone, _, _ = passes(encoder, agent, False, 0)
    together, encoded, _ = passes(encoder, agent, True, 0)
    for (metrics, ious), (expected_metrics, expected_ious) in zip(together, alone):
        assert metrics == expected_metrics and torch.equal(ious, expected_ious)
    assert encoded.rollout_groups.verdicts == {(3, 16): False} and encoded.rollout_groups.rollouts == 0
    err = capsys.readouterr().err
    assert err.count("batched evaluation off for 3 batches of 16 images: rolled out together they gave other bits") == 1


def test_training_passes_roll_out_batch_by_batch():
    encoder, agent = models()
    encoded = EncodedImages(Images(48, seed=3), encoder, 16, "cpu", Precision(), batched_eval=True)
    optimizer = torch.optim.SGD(agent.parameters(), lr=1e-3)
    agent_epoch(encoder, agent, loader_of(encoded, 16), "cpu", torch.Generator().manual_seed(0), CONFIG, 0, optimizer)
    assert encoded.rollout_groups.verdicts == {} and RolloutGroups(False).usable(encoder, agent, [None, None], CONFIG.rollout) is False


class SizeDependentEncoder(RoIEncoder):
    """An encoder whose maps change with the batch size (as a convolution's can for 1 or 3 images)."""

    def features(self, images):
        return super().features(images) + (1e-3 if images.shape[0] != 16 else 0.0)


def test_a_batch_of_another_size_reads_the_feature_cache_once_a_probe_found_the_cached_bits():
    """The feature cache of 16-image batches (its last 2 rows encoded among the last 16 images) serves
    a 2-image batch as FeatureRows when its encoder gives images at 2 the bits they have among 16
    (probed once, on images of the first batch), and its images otherwise: the last two rows first,
    then two from other batches."""
    for encoder_class, reads in ((RoIEncoder, True), (SizeDependentEncoder, False)):
        torch.manual_seed(0)
        encoder = encoder_class(pooling_size=7, dim=32).requires_grad_(False).eval()
        images = Images(50, seed=1)
        encoded = EncodedImages(images, encoder, 16, "cpu", Precision())
        assert torch.equal(encoded.features[48:], encoder.features(images.images[34:])[14:])  # encoded among 16
        for rows in ([48, 49], [3, 20], [48, 3]):
            batch, targets = encoded[torch.tensor(rows)]
            assert isinstance(batch, FeatureRows) is reads and torch.equal(targets, images.targets[rows]), (encoder_class, rows)
            if reads:
                assert torch.equal(batch.gathered(), encoder.features(images.images[rows]))
        assert encoded.other_sizes == {2: reads}
        assert isinstance(encoded[torch.arange(16, 32)][0], FeatureRows)
