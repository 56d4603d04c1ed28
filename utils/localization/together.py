"""Evaluation batches rolled out together: consecutive batches of a run's feature cache go through one
rollout of all their images (docs/speed.md).

An evaluation pass of agent training is 1,010 test images in the published batches of 50: 21
rollouts of 10 steps, each step a RoIAlign call, the head and the agent's four layers on 50 rows.
The batches stay what they are for everything the figures read (reward groups, prototypes, metric
sums, the order of the random draws); only the rollout, where each image's episode is computed from
its own rows, runs over the images of up to MAX_IMAGES at once. That gives the same episodes only
where the agent's and the head's layers give a row the same bits among N rows as among a batch's n,
so a probe checks it on the first group of each shape (batches x images) of a cache before any of
its figures are computed, and those batches roll out one by one where it fails (one line).
"""

import torch

from models.agent import gumbel_noise
from utils.localization.rollout import FeatureRows, episode_noise_shape, rollout
from utils.run.logging import warn

MAX_IMAGES = 1024  # per rollout: its states (N, T, 64, 7, 7) take 128 MB at 1,024 images
MIN_BATCH = 16  # smaller batches roll out alone: a matrix product's rows can have other bits below 12 rows (box_cache.py)
PROBE_SEED = 20241201  # the probe's own draws: it takes nothing from a run's generators


def groups(batches, max_images=MAX_IMAGES):
    """Consecutive runs of `batches` [(images, targets)] that roll out together -> lists of batch
    indices: FeatureRows of the same maps and size (at least MIN_BATCH images) and distinct images (a
    BoxCache serves distinct images), at most `max_images` images; every other batch (another size,
    images rather than features, a small batch) alone."""
    run = []
    for index, (images, _) in enumerate(batches):
        first = batches[run[0]][0] if run else None
        joins = (run and isinstance(images, FeatureRows) and images.maps is first.maps and len(images) == len(first)
                 and len(images) * (len(run) + 1) <= max_images
                 and not torch.isin(images.rows, torch.cat([batches[i][0].rows for i in run])).any())
        if not joins:
            if run:
                yield run
            run = []
        run.append(index)
        if not isinstance(images, FeatureRows) or len(images) < MIN_BATCH:
            yield run
            run = []
    if run:
        yield run


def together(parts):
    """The FeatureRows of several batches' rows of one feature cache, as one batch (its BoxCache too)."""
    return FeatureRows(parts[0].maps, torch.cat([part.rows for part in parts]), parts[0].box_cache)


def same_episodes(net, agent, parts, config):
    """The probe: do the batches `parts` (FeatureRows of one size) give the same sampled episodes,
    bit for bit, rolled out together as one by one? Seeded draws of its own; no BoxCache read or filled."""
    rows = torch.cat([part.rows for part in parts])
    maps, n = parts[0].maps, len(parts[0])
    generator = torch.Generator(device=maps.device).manual_seed(PROBE_SEED)
    noise = gumbel_noise(episode_noise_shape(len(rows), config), maps.device, generator)
    whole = rollout(net, agent, FeatureRows(maps, rows), config, "sample", noise=noise)
    for i in range(len(parts)):
        alone = rollout(net, agent, FeatureRows(maps, rows[i * n:(i + 1) * n]), config, "sample", noise=noise[:, i * n:(i + 1) * n])
        part = whole.images(i * n, (i + 1) * n)
        pairs = [(part.boxes, alone.boxes), (part.embeddings, alone.embeddings), (part.logits, alone.logits), (part.states, alone.states)]
        if not all(torch.equal(a, b) for a, b in pairs):
            return False
    return True


class RolloutGroups:
    """Whether a feature cache's evaluation batches roll out together: `--batched_eval 1`, decided by
    `same_episodes` on the first group of each shape (batches x images) that the cache's evaluation
    passes meet (kept for the run)."""

    def __init__(self, enabled):
        self.enabled, self.verdicts = enabled, {}
        self.batches = self.rollouts = 0  # batches rolled out together, in how many rollouts

    def usable(self, net, agent, parts, config):
        """Whether the batches `parts` roll out together (probing the group's shape once); counts them if so."""
        if not self.enabled or len(parts) < 2:
            return False
        shape = (len(parts), len(parts[0]))
        if shape not in self.verdicts:
            self.verdicts[shape] = same_episodes(net, agent, parts, config)
            if not self.verdicts[shape]:
                warn(f"batched evaluation off for {shape[0]} batches of {shape[1]} images: rolled out together they gave other bits "
                     "than one by one on this machine; they roll out alone (the same figures, slower)")
        if self.verdicts[shape]:
            self.batches, self.rollouts = self.batches + len(parts), self.rollouts + 1
        return self.verdicts[shape]
