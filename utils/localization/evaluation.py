"""The one evaluation of a split that both methods run (the 2021 test pass, the successor's
evaluation passes): sampled actions, as the originals test, and greedy (argmax) actions on request;
and the baselines a policy is compared with (adaptation's summary, the 2021 cross-digit table)."""

import torch

from utils.localization.boxes import box_iou_pairs
from utils.localization.rollout import corloc, rollout, whole_image_boxes


def evaluate_split(run_pass, phase, generator, greedy_generator=None):
    """Evaluates one split without gradients -> (metrics, extras by policy).

    run_pass(policy, generator, phase) -> (metrics named `{phase} ...` with `{phase} Loc Acc`, extras
    with `final_ious` (N,)): one pass of the method over the split (its epoch function without an
    update). The sampled pass draws from `generator` (a run's evaluation stream); with a
    `greedy_generator` (a freshly seeded stream, so asking for it moves no other figure) the greedy
    pass adds `{phase} Loc Acc Greedy`. `extras["sample"]` / `extras["greedy"]` are the passes' extras.
    """
    with torch.no_grad():
        metrics, sampled = run_pass("sample", generator, phase)
        extras = {"sample": sampled}
        if greedy_generator is not None:
            greedy, extras["greedy"] = run_pass("greedy", greedy_generator, "Greedy")
            metrics[f"{phase} Loc Acc Greedy"] = greedy["Greedy Loc Acc"]
    return metrics, extras


def baseline_ious(target_batches, config, generator, device):
    """Final IoUs of the two baselines on the ground truths of a split's batches [(B, 4)] -> {"whole
    image": the first window kept, "random policy": `config.seq_len` uniform random actions from it,
    drawn batch after batch}, each (N,) on the CPU."""
    whole, random = [], []
    for targets in target_batches:
        targets = targets.to(device)
        whole.append(box_iou_pairs(whole_image_boxes(len(targets), device, config.image_size), targets).cpu())
        random.append(rollout(None, None, targets, config, "random", generator).final_ious(targets).cpu())
    return {"whole image": torch.cat(whole), "random policy": torch.cat(random)}


def baseline_corloc(target_batches, config, generator, device, phase="Test"):
    """`{phase} CorLoc whole image` and `{phase} CorLoc random policy` of `baseline_ious`."""
    ious = baseline_ious(target_batches, config, generator, device)
    return {f"{phase} CorLoc {name}": corloc(values) for name, values in ious.items()}


def too_small_share(targets, min_box_side):
    """% of targets (N, 4) that no window can ever localize: IoU (areas (x2 - x1)(y2 - y1)) is at most
    the smaller area over the larger, and no window is below m x m, i.e. area (m - 1)^2 by that rule,
    so a target under half of it never reaches IoU 0.5 (m = 40: 760.5 px^2). Such targets cap CorLoc."""
    targets = torch.as_tensor(targets, dtype=torch.float64)
    areas = (targets[:, 2] - targets[:, 0]) * (targets[:, 3] - targets[:, 1])
    return 100.0 * (areas < (min_box_side - 1) ** 2 / 2).double().mean().item() if len(targets) else float("nan")
