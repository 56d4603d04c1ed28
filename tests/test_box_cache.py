"""utils/localization/box_cache.py: rollouts that read revisited boxes from a BoxCache give the episodes
of rollouts that compute every box, bit for bit; a head whose rows depend on the batch, or a batch
too small to pad, turns the cache off; the memory the CPU caches are sized against."""

import torch

from models import Agent, RoIAgent, RoIEncoder
from utils.localization.box_cache import BoxCache, padded_sizes
from utils.localization.rollout import FeatureRows, RolloutConfig, rollout

CONFIG = RolloutConfig(seq_len=4, num_act=10, min_box_side=28, inclusive=True)
FIELDS = ("boxes", "embeddings", "logits", "actions", "states")


def models(agent_kind):
    torch.manual_seed(0)
    encoder = RoIEncoder(pooling_size=7, dim=32).eval()
    agent = RoIAgent(pooling_size=7, hidden_size=16) if agent_kind == "roi" else Agent(dim=32, hidden_size=16)
    with torch.no_grad():
        maps = encoder.features(torch.randn(48, 1, 84, 84))
    return encoder, agent, maps


def passes(maps, cache, encoder, agent):
    """Epoch-like rollouts of batches of 32 of the 48 images, with and without the cache."""
    order = torch.Generator().manual_seed(5)
    for seed, policy in ((1, "sample"), (2, "sample"), (2, "sample"), (3, "greedy"), (4, "sample")):
        rows = torch.randperm(48, generator=order)[:32]
        cached = rollout(encoder, agent, FeatureRows(maps, rows, cache), CONFIG, policy, torch.Generator().manual_seed(seed))
        computed = rollout(encoder, agent, FeatureRows(maps, rows), CONFIG, policy, torch.Generator().manual_seed(seed))
        yield cached, computed


def test_padded_sizes():
    assert padded_sizes(100) == [16, 32, 48, 64, 80, 96, 100] and padded_sizes(16) == [16] and padded_sizes(512)[-2:] == [496, 512]


def test_rollouts_through_a_box_cache_are_the_rollouts_that_compute_every_box():
    for agent_kind in ("roi", "embedding"):
        encoder, agent, maps = models(agent_kind)
        cache = BoxCache(48, CONFIG.seq_len + 1, "cpu")
        for cached, computed in passes(maps, cache, encoder, agent):
            for name in FIELDS:
                assert torch.equal(getattr(cached, name), getattr(computed, name)), (agent_kind, name)
        assert cache.usable and 0 < cache.hits < cache.lookups, agent_kind  # boxes read and boxes computed
        assert cache.lookups == 32 * (5 * (CONFIG.seq_len + 1) - 1)  # the first call (computed and probed) counts none


class SizeDependentHead(RoIEncoder):
    """A head whose rows change with the batch size (as a matrix product's can)."""

    def project(self, roi_features):
        return super().project(roi_features) + (1e-3 if roi_features.shape[0] != 32 else 0.0)


class PlaceDependentHead(RoIEncoder):
    """A head whose rows change with their place in the batch."""

    def project(self, roi_features):
        out = super().project(roi_features)
        return out + 1e-3 * (torch.arange(len(out)) % 2)[:, None]


def test_a_head_whose_rows_depend_on_the_batch_turns_the_cache_off(capsys):
    _, agent, maps = models("roi")
    for head, size in ((SizeDependentHead, 16), (PlaceDependentHead, 16)):
        torch.manual_seed(0)
        encoder = head(pooling_size=7, dim=32).eval()
        cache = BoxCache(48, CONFIG.seq_len + 1, "cpu")
        for cached, computed in passes(maps, cache, encoder, agent):
            for name in FIELDS:
                assert torch.equal(getattr(cached, name), getattr(computed, name)), (head.__name__, name)
        assert cache.usable is False and cache.lookups == 0 and cache.roi_features is None, head.__name__
        assert f"box cache off: the head gives a box other bits in a batch of {size} (or in another place) than in its batch of 32 on cpu" \
            in capsys.readouterr().err, head.__name__


def test_other_batch_sizes_and_a_net_in_train_mode_are_computed_and_change_nothing():
    encoder, agent, maps = models("roi")
    cache = BoxCache(48, CONFIG.seq_len + 1, "cpu")
    rollout(encoder, agent, FeatureRows(maps, torch.arange(32), cache), CONFIG, "greedy")  # the cache's batch size: 32
    kept, looked_up = cache.boxes.clone(), cache.lookups
    for rows in (torch.arange(40), torch.arange(20)):
        cached = rollout(encoder, agent, FeatureRows(maps, rows, cache), CONFIG, "greedy")
        assert torch.equal(cached.embeddings, rollout(encoder, agent, FeatureRows(maps, rows), CONFIG, "greedy").embeddings)
    torch.manual_seed(3)
    dropped = rollout(encoder.train(), agent, FeatureRows(maps, torch.arange(32), cache), CONFIG, "greedy")  # dropout: computed
    torch.manual_seed(3)
    assert torch.equal(dropped.embeddings, rollout(encoder, agent, FeatureRows(maps, torch.arange(32)), CONFIG, "greedy").embeddings)
    assert cache.lookups == looked_up and torch.equal(cache.boxes.nan_to_num(-1), kept.nan_to_num(-1))  # nothing read or stored


def test_batches_under_16_images_keep_no_cache(capsys):
    encoder, agent, maps = models("roi")
    cache = BoxCache(48, CONFIG.seq_len + 1, "cpu")
    rows = torch.arange(8)
    for _ in range(2):
        cached = rollout(encoder, agent, FeatureRows(maps, rows, cache), CONFIG, "greedy")
    assert torch.equal(cached.embeddings, rollout(encoder, agent, FeatureRows(maps, rows), CONFIG, "greedy").embeddings)
    assert cache.usable is False and cache.lookups == 0 and capsys.readouterr().err == ""


def test_free_memory_counts_what_the_kernel_can_reclaim(tmp_path, monkeypatch):
    """CPU caches are sized against MemAvailable (free pages plus reclaimable page cache), else the free pages."""
    import utils.successor.data as data

    monkeypatch.setattr(data.os, "sysconf", {"SC_AVPHYS_PAGES": 10, "SC_PAGE_SIZE": 4096}.get)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684128 kB\nMemFree:         6832108 kB\nMemAvailable:   18991072 kB\n")
    assert data.free_memory("cpu", str(meminfo)) == 18991072 * 1024
    meminfo.write_text("MemTotal:       24684128 kB\nMemFree:         6832108 kB\n")
    assert data.free_memory("cpu", str(meminfo)) == data.free_memory("cpu", str(tmp_path / "missing")) == 40960
