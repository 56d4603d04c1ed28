"""What a frozen encoder gave for the boxes each image saw in its latest two episodes, so that a later
episode that revisits a box reads its RoI feature and embedding instead of pooling and projecting it
again (the successor's agent training and adaptation, docs/speed.md).

Between epochs a policy changes little: in a published adaptation most boxes of an episode are boxes
that the image's two previous episodes saw (90.6 % over the whole T1 run, measured), and pooling a box and the
head's 3,136 x 1,024 layer are most of a rollout step on a CPU. A reused value is the one computed
before, bit for bit; a box seen for the first time is computed among the step's other new boxes. A
matrix product can give a row other bits in a batch of another size (on this project's CPU: batches
of 1-3, 5-7 and 9-11 rows), so new boxes are projected in batches padded to a few fixed sizes, and
the cache is used only once a probe on the run's first batch found the head giving the same rows in
each of those sizes as in the whole batch; it turns itself off otherwise.
"""

import torch

from utils.run.logging import warn

MIN_PROJECTED_ROWS = 16  # new boxes are projected in batches of a multiple of 16 (below 12 rows the rows' bits can differ)
EPISODES_KEPT = 2  # T1's before passes and first 4 epochs read 74.8 % of their boxes back with two kept, 69.3 % with one (measured)
PROBE_SEED = 20240611  # the probe's own stream: it draws nothing from a run's generators


def padded_sizes(batch_size):
    """The batch sizes new boxes are projected in: 16, 32, 48, ... below `batch_size`, then `batch_size`."""
    return [*range(MIN_PROJECTED_ROWS, batch_size, MIN_PROJECTED_ROWS), batch_size]


def pool_and_project(net, maps, index, box):
    """(RoI features, embeddings) of one box per image, index (N, 1) naming each image's row in `maps`."""
    roi_features = net.roi_features(maps, torch.cat([index, box], dim=1))
    return roi_features, net.project(roi_features)


class BoxCache:
    """Per image of a dataset (its row in the feature cache), the box of each step of its latest
    EPISODES_KEPT episodes with its RoI feature and embedding: `steps` (an episode's T + 1) boxes each.

    `observe(net, maps, index, rows, step, box)` -> (RoI features (N, C, p, p), embeddings (N, D)) of
    the boxes (N, 4) of the images `rows` (N,) at `step`, read where the image saw the same box in its
    latest episodes (or earlier in this one) and computed otherwise; then stores them as the step's.
    `hits` / `lookups` count the boxes read / asked for. The cache serves batches of N distinct images,
    N the size of its first batch (a feature cache's batches), from a net in eval mode; any other
    call is computed and changes nothing.
    """

    def __init__(self, images, steps, device):
        self.images, self.steps, self.slots = images, steps, EPISODES_KEPT * steps
        self.boxes = torch.full((images, self.slots, 4), float("nan"), device=device)  # NaN: no box yet, equal to none
        self.episode = torch.zeros(images, dtype=torch.long, device=device)  # which of the kept episodes a step writes
        self.roi_features = self.embeddings = None  # allocated at the first call (shapes and dtypes of the net's outputs)
        self.usable = None  # the probe's verdict, at the first call
        self.batch_size, self.sizes = None, []
        self.hits = self.lookups = 0

    @staticmethod
    def bytes_needed(images, steps, roi_feature_numel, dim):
        """The memory a float32 cache of `images` takes (boxes, RoI features, embeddings)."""
        return images * EPISODES_KEPT * steps * 4 * (4 + roi_feature_numel + dim)

    def observe(self, net, maps, index, rows, step, box):
        served = self.usable and len(rows) == self.batch_size and not net.training  # dropout would draw afresh
        if served:
            roi_features, embeddings = self._read_or_compute(net, maps, index, rows, box)
        else:
            roi_features, embeddings = pool_and_project(net, maps, index, box)
            if self.usable is None and not net.training:  # the first call (a whole batch): probe and allocate
                self._start(net, roi_features, embeddings)
                served = self.usable
        if served and step < self.steps:
            if step == 0:  # a new episode overwrites the older kept one
                self.episode[rows] = (self.episode[rows] + 1) % EPISODES_KEPT
            slot = self.episode[rows] * self.steps + step
            self.roi_features[rows, slot] = roi_features
            self.embeddings[rows, slot] = embeddings
            self.boxes[rows, slot] = box  # last: a slot's box names values already written
        return roi_features, embeddings

    def _read_or_compute(self, net, maps, index, rows, box):
        same = (self.boxes[rows] == box[:, None]).all(dim=2)  # (N, slots)
        seen = same.any(dim=1)
        new = torch.nonzero(~seen).squeeze(1)  # a host sync: the cache is for CPU runs
        n, fresh = len(rows), len(new)
        self.lookups += n
        self.hits += n - fresh
        if fresh == n:
            return pool_and_project(net, maps, index, box)
        slot = same.to(torch.uint8).argmax(dim=1)  # the first slot holding the box
        roi_features = self.roi_features[rows, slot]
        embeddings = self.embeddings[rows, slot]
        if fresh:
            computed = net.roi_features(maps, torch.cat([index[new], box[new]], dim=1))
            roi_features[new] = computed
            embeddings[new] = self._project_padded(net, computed)
        return roi_features, embeddings

    def _project_padded(self, net, roi_features):
        """The head on `roi_features` in a batch padded with zero rows to the next of `self.sizes`."""
        fresh = roi_features.shape[0]
        size = next(s for s in self.sizes if s >= fresh)  # fresh < batch_size, the last size
        if size > fresh:
            roi_features = torch.cat([roi_features, roi_features.new_zeros((size - fresh, *roi_features.shape[1:]))])
        return net.project(roi_features)[:fresh]

    def _start(self, net, roi_features, embeddings):
        """Probes the head on the first batch, then allocates the stores: every padded size must give
        rows, wherever they sit, the bits they have in the whole batch."""
        batch = len(roi_features)
        self.usable = batch >= MIN_PROJECTED_ROWS  # in smaller batches a row's bits can depend on its place
        if not self.usable:
            return
        self.batch_size, self.sizes = batch, padded_sizes(batch)
        generator = torch.Generator().manual_seed(PROBE_SEED)
        for size in self.sizes:  # rows drawn in random order: their places change too (the whole batch permuted)
            chosen = torch.randperm(batch, generator=generator)[:size].to(roi_features.device)
            if not torch.equal(net.project(roi_features[chosen]), embeddings[chosen]):
                self.usable = False
                warn(f"box cache off: the head gives a box other bits in a batch of {size} (or in another place) than in "
                     f"its batch of {batch} on {roi_features.device}; every box is computed (--box_cache 0 turns it off "
                     f"without this line)")
                return
        shape = lambda x: (self.images, self.slots, *x.shape[1:])
        self.roi_features = roi_features.new_empty(shape(roi_features))  # a slot is read only once its box is written
        self.embeddings = embeddings.new_empty(shape(embeddings))
