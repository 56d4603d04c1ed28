"""One epoch of ordinal pretraining (SPEC §4) or joint training (SPEC §7), and agent rollouts."""

import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.net import stack_rois
from utils.actions import Actor
from utils.boxes import box_iou_pairs, sample_ordinal_boxes
from utils.ordinal import ordinal_terms
from utils.rl import iou_rewards, policy_terms, step_rewards

# f_0 of SPEC §6: the whole image as an inclusive box (the actor's own window starts at 84).
WHOLE_IMAGE_BOX = (0.0, 0.0, 83.0, 83.0)
CORLOC_IOU = 0.5


class NonFiniteLoss(Exception):
    """A loss became NaN or infinite; the message names the phase, epoch and batch."""


class EpochMeter:
    """Running sums kept on the device (one host sync per log interval, not per batch)."""

    def __init__(self, device, names):
        self.sums = {name: torch.zeros((), device=device, dtype=torch.float64) for name in names}
        self.first_bad_batch = torch.full((), -1, device=device, dtype=torch.long)
        self.batches = 0

    def add(self, batch_index, batch_loss, **values):
        """Adds each value's sum; `batch_loss` non-finite marks the batch as bad."""
        bad = ~torch.isfinite(batch_loss.detach())
        self.first_bad_batch = torch.where(bad & (self.first_bad_batch < 0), batch_index, self.first_bad_batch)
        for name, value in values.items():
            self.sums[name] += value.detach().double().sum()
        self.batches += 1

    def check_finite(self, phase, epoch):
        bad = int(self.first_bad_batch)
        if bad >= 0:
            raise NonFiniteLoss(f"{phase} loss is not finite at epoch {epoch}, batch {bad}; stopping (checkpoints keep the last good state)")


def maybe_normalize(embeddings, norm):
    """`--norm 1`: L2-normalise embeddings before distances."""
    return F.normalize(embeddings, dim=1) if norm else embeddings


def iterate(loader, phase, epoch, max_batches):
    """Batches with a tqdm bar (phase and epoch in the description); stops after `max_batches` if > 0."""
    total = min(len(loader), max_batches) if max_batches else len(loader)
    bar = tqdm(loader, desc=f"{phase} epoch {epoch}", total=total, leave=False, dynamic_ncols=True, disable=None)
    for batch_index, batch in enumerate(bar):
        if batch_index >= total:
            break
        yield batch_index, batch, bar


def pretrain_epoch(net, loader, device, generator, args, epoch, optimizer=None, phase=None):
    """One pass of ordinal pretraining over `loader`; trains when `optimizer` is given, else evaluates.

    `phase` prefixes the metric names (default "Train" when training, else "Test").

    Per batch: two ordinal boxes per image, one backbone pass, one head pass over the
    ground-truth and both boxes' RoIs. Returns `{phase} Total Loss`, `Ord Acc Inst`, `Ord Acc Proto`.
    """
    training = optimizer is not None
    phase = phase or ("Train" if training else "Test")
    net.train(training)
    meter = EpochMeter(device, ("loss", "inst", "proto", "items"))
    for batch_index, (images, targets), bar in iterate(loader, phase, epoch, args.max_batches):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        n = images.shape[0]
        boxes, ious = sample_ordinal_boxes(targets, num=2, generator=generator)
        with torch.set_grad_enabled(training):
            embeddings = maybe_normalize(net(images, stack_rois(targets, boxes[:, 0], boxes[:, 1])), args.norm)
            f_gt, f_i, f_j = embeddings.split(n)
            terms = ordinal_terms(f_gt, f_i, f_j, ious[:, 0], ious[:, 1], args.margin)
        if training:
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
        meter.add(batch_index, terms["loss"], loss=terms["loss"], inst=terms["inst"], proto=terms["proto"], items=torch.tensor(n))
        if (batch_index + 1) % args.log_interval == 0:
            meter.check_finite(phase, epoch)
            bar.set_postfix(loss=f"{meter.sums['loss'].item() / meter.batches:.4f}")
    meter.check_finite(phase, epoch)
    sums = {name: value.item() for name, value in meter.sums.items()}
    items = max(sums["items"], 1)
    return {
        f"{phase} Total Loss": sums["loss"] / max(meter.batches, 1),
        f"{phase} Ord Acc Inst": 100.0 * sums["inst"] / items,
        f"{phase} Ord Acc Proto": 100.0 * sums["proto"] / items,
    }
