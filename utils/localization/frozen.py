"""The frozen-encoder speed component of the successor's agent scripts (docs/speed.md).

Agent training and adaptation never change their encoder, so `FrozenEncoder` computes what depends
on it alone once per run: each image's feature map and the embedding of its ground-truth box. It can
also keep a `BoxMemo`: the RoI feature and embedding of every box an image saw in its latest two
episodes, which a later episode that revisits the box reads instead of pooling and projecting it again.

Which parts a run uses follows from the device and the flags alone (`SpeedPlan`), printed once at the
start; nothing turns itself off while the run goes on. The component checks its own assumption at
every epoch (`check`): the encoder is in eval mode and its parameters are those it encoded with.
Outputs equal the plain path's in exact arithmetic (float64: tests); in float32 a value can differ in
its last bits, since a matrix product may round a row differently among another number of rows.
"""

from dataclasses import dataclass

import torch

from utils.errors import FrozenEncoderChanged

EPISODES_KEPT = 2  # a BoxMemo keeps each image's latest two episodes


@dataclass(frozen=True)
class SpeedPlan:
    """What a run's FrozenEncoder does, from device and flags alone.

    `cache_maps` (--feature_cache 1): feature maps and ground-truth embeddings once per run.
    `memo` (--box_cache 1, with the maps cached, on a CPU in float32): the BoxMemo. Its lookup finds
    which boxes are new, a data-dependent count: on a CPU that costs nothing, on CUDA it would make
    the host wait for the device at every step, and a bf16 head would not give back float32 values.
    """

    cache_maps: bool
    memo: bool

    @classmethod
    def from_flags(cls, feature_cache, box_cache, device, amp):
        cache_maps = bool(feature_cache)
        memo = bool(box_cache) and cache_maps and torch.device(device).type == "cpu" and amp in (None, "none")
        return cls(cache_maps, memo)

    def describe(self):
        maps = "feature maps and ground-truth embeddings computed once per run" if self.cache_maps else \
            "the encoder runs on every batch (--feature_cache 0)"
        memo = "revisited boxes read from a box memo" if self.memo else "every box pooled and projected"
        return f"{maps}; {memo}"


def full_precision(values):
    """float32 for bf16 values (autocast's outputs), float32 and float64 as they are."""
    return values if values.dtype in (torch.float32, torch.float64) else values.float()


def parameter_checksum(module):
    """One float64 number from every parameter and buffer of `module` (one host sync)."""
    tensors = [t.detach().double().sum() for t in (*module.parameters(), *module.buffers())]
    return float(torch.stack(tensors).sum()) if tensors else 0.0


class FrozenEncoder:
    """The frozen `encoder` (a RoIEncoder or VGGRoIEncoder in eval mode) of a run, as its epochs read it.

    `batch(dataset, rows, targets)` -> (maps, rows into maps (B,), ground-truth embeddings (B, D)) of
    the images `rows` (B,) int64 of `dataset` (indexing it with a tensor gives (images, targets), as
    ClutteredMNIST and RealImages do) with their boxes `targets` (B, 4); `memo(dataset)`
    -> its BoxMemo or None. With `plan.cache_maps` the maps and embeddings of a dataset are computed in
    batches of `batch_size` when first asked for and kept (maps in float32 under bf16 autocast too:
    RoIAlign pools float32 maps); otherwise each call encodes its images.
    """

    def __init__(self, encoder, device, precision, batch_size, plan, steps):
        self.encoder, self.device, self.precision, self.batch_size, self.plan = encoder, device, precision, batch_size, plan
        self.steps = steps  # boxes per episode (T + 1), what a BoxMemo keeps per episode
        self.stores = {}  # id(dataset) -> (maps, ground-truth embeddings, BoxMemo or None, the dataset: its id stays its own)
        self.checksum = parameter_checksum(encoder)

    def check(self):
        """Stops with one line when the encoder left eval mode (its dropout would draw in the rewards) or,
        with cached maps, when its parameters changed since they were computed."""
        if self.encoder.training:
            raise FrozenEncoderChanged("the frozen encoder is in train mode: its dropout would change every feature; "
                                       "agent training and adaptation need it in eval mode")
        if self.plan.cache_maps and parameter_checksum(self.encoder) != self.checksum:
            raise FrozenEncoderChanged("the frozen encoder's parameters changed during the run, so its cached feature maps are "
                                       "stale; an encoder that trains needs --feature_cache 0")

    def _encode(self, images, targets):
        """(maps, ground-truth embeddings) of a batch: the backbone in the run's precision, the
        embeddings of the full-precision maps outside autocast (as the rewards always read them)."""
        with torch.no_grad():
            with self.precision.autocast(self.device):
                maps = full_precision(self.encoder.features(images.to(self.device)))
            index = torch.arange(len(maps), device=self.device, dtype=maps.dtype)[:, None]
            f_gt = self.encoder.embed(maps, torch.cat([index, targets.to(self.device, maps.dtype)], dim=1))
        return maps, f_gt

    def _store(self, dataset):
        if id(dataset) not in self.stores:
            parts = [self._encode(*dataset[torch.arange(start, min(start + self.batch_size, len(dataset)))])
                     for start in range(0, len(dataset), self.batch_size)]
            maps, f_gt = (torch.cat(part) for part in zip(*parts))
            memo = BoxMemo(len(dataset), self.steps, self.device) if self.plan.memo else None
            self.stores[id(dataset)] = (maps, f_gt, memo, dataset)
        return self.stores[id(dataset)]

    def release(self, dataset):
        """Drops what is kept of `dataset` (a split evaluated once)."""
        self.stores.pop(id(dataset), None)

    def batch(self, dataset, rows, targets):
        if self.plan.cache_maps:
            maps, f_gt, _, _ = self._store(dataset)
            return maps, rows, f_gt[rows]
        maps, f_gt = self._encode(dataset[rows.cpu()][0], targets)  # the images, read where they are (one copy to the host)
        return maps, torch.arange(len(rows), device=maps.device), f_gt

    def memo(self, dataset):
        return self._store(dataset)[2] if self.plan.cache_maps else None

    def bytes_needed(self, datasets):
        """The memory the cached maps (and memos) of `datasets` take, from one image's map."""
        maps, f_gt = self._encode(*datasets[0][torch.arange(1)])
        per_image = maps[0].numel() * 4 + f_gt[0].numel() * 4
        if self.plan.memo:
            per_image += BoxMemo.bytes_per_image(self.steps, maps.shape[1] * self.encoder.pooling_size**2, f_gt.shape[1])
        return sum(len(d) for d in datasets) * per_image

    def report(self):
        """Prints the share of looked-up boxes the memos served (nothing without lookups)."""
        memos = [store[2] for store in self.stores.values() if store[2] is not None and store[2].lookups]
        if memos:
            hits, lookups = sum(m.hits for m in memos), sum(m.lookups for m in memos)
            print(f"box memo: {100.0 * hits / lookups:.1f} % of {lookups:,} boxes looked up were read, not computed")


class BoxMemo:
    """Per image of a dataset, the box of each step of its latest EPISODES_KEPT episodes with its RoI
    feature and embedding (`steps` boxes an episode).

    `observe(net, maps, index, rows, step, box)` -> (RoI features (N, C, p, p), embeddings (N, D)) of
    the boxes (N, 4) of the distinct images `rows` (N,) at `step`: read where the image saw the box in
    its kept episodes or earlier in this one, pooled and projected otherwise; then kept as the step's.
    `hits` / `lookups` count the boxes read / asked for.
    """

    def __init__(self, images, steps, device):
        self.steps, self.slots = steps, EPISODES_KEPT * steps
        self.boxes = torch.full((images, self.slots, 4), float("nan"), device=device)  # NaN: no box yet, equal to none
        self.episode = torch.zeros(images, dtype=torch.long, device=device)  # which kept episode a step writes
        self.roi_features = self.embeddings = None  # allocated at the first call (the net's output shapes)
        self.hits = self.lookups = 0

    @staticmethod
    def bytes_per_image(steps, roi_feature_numel, dim):
        return EPISODES_KEPT * steps * 4 * (4 + roi_feature_numel + dim)

    def observe(self, net, maps, index, rows, step, box):
        same = (self.boxes[rows] == box[:, None]).all(dim=2)  # (N, slots)
        new = torch.nonzero(~same.any(dim=1)).squeeze(1)  # data-dependent: why the memo is for CPU runs (SpeedPlan)
        n, fresh = len(rows), len(new)
        self.lookups, self.hits = self.lookups + n, self.hits + n - fresh
        if fresh == n:
            roi_features = net.roi_features(maps, torch.cat([index, box], dim=1))
            embeddings = net.project(roi_features)
        else:
            slot = same.to(torch.uint8).argmax(dim=1)  # the first slot holding the box
            roi_features, embeddings = self.roi_features[rows, slot], self.embeddings[rows, slot]
            if fresh:
                computed = net.roi_features(maps, torch.cat([index[new], box[new]], dim=1))
                roi_features[new], embeddings[new] = computed, net.project(computed)
        if self.roi_features is None:
            shape = lambda x: (len(self.boxes), self.slots, *x.shape[1:])
            self.roi_features, self.embeddings = roi_features.new_empty(shape(roi_features)), embeddings.new_empty(shape(embeddings))
        if step < self.steps:
            if step == 0:  # a new episode overwrites the older kept one
                self.episode[rows] = (self.episode[rows] + 1) % EPISODES_KEPT
            slot = self.episode[rows] * self.steps + step
            self.roi_features[rows, slot], self.embeddings[rows, slot] = roi_features, embeddings
            self.boxes[rows, slot] = box  # last: a slot's box names values already written
        return roi_features, embeddings
