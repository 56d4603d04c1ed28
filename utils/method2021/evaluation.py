"""Evaluation of the 2021 method: final IoUs of a policy, the cross-digit table with its baselines,
and the embedding's distance-vs-IoU diagnostics."""

import csv

import torch
from scipy.stats import spearmanr

from utils.localization.boxes import box_iou_pairs, random_square_boxes
from utils.localization.evaluation import baseline_ious
from utils.localization.rollout import corloc, maybe_normalize, rollout


def final_ious(net, agent, loader, device, config, policy="sample", generator=None):
    """IoU of each test image's final box with its ground truth -> (N,) float CPU tensor.

    config: a RolloutConfig; `policy`: "sample" (the original's evaluation), "greedy" (argmax) or
    "random" (uniform over `config.num_act` actions, the agent unused); generator: the stream of
    the action draws (the run's evaluation stream). No gradients.
    """
    for model in (net, agent):
        if model is not None:  # a random policy needs neither
            model.eval()
    ious = []
    with torch.no_grad():
        for images, targets in loader:
            images, targets = images.to(device), targets.to(device)
            # a random policy needs no features; rollout only reads the batch size and device from them
            with config.precision.autocast(device):
                features = net.features(images) if policy != "random" else images
            episode = rollout(net, agent, features, config, policy, generator)
            ious.append(episode.final_ious(targets).cpu())
    return torch.cat(ious)


def digit_row(net, agent, loader, device, config, digit, trained_digit, generator=None):
    """One row of the cross-digit table: CorLoc sampled / greedy, mean IoU, baselines."""
    sampled = final_ious(net, agent, loader, device, config, "sample", generator)
    greedy = final_ious(net, agent, loader, device, config, "greedy", generator)
    baselines = baseline_ious([targets for _, targets in loader], config, generator, device)  # random draws after greedy, as before
    return {
        "digit": digit,
        "trained on": "yes" if digit == trained_digit else "",
        "images": len(sampled),
        "CorLoc sampled": corloc(sampled),
        "CorLoc greedy": corloc(greedy),
        "mean IoU sampled": sampled.mean().item(),
        "mean IoU greedy": greedy.mean().item(),
        "CorLoc whole image": corloc(baselines["whole image"]),
        "CorLoc random policy": corloc(baselines["random policy"]),
    }


def write_table(rows, csv_path, markdown_path):
    """Writes the rows as CSV and as a Markdown table (numbers with 2 decimals)."""
    columns = list(rows[0].keys())
    with open(csv_path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    cell = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    with open(markdown_path, "w") as stream:
        stream.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def distance_vs_iou(net, dataset, device, generator, boxes_per_image=20, max_images=200, norm=False):
    """Random square boxes on test images: their IoU with the ground truth and the Euclidean
    distance of their embedding to the ground-truth embedding.

    Returns ious (M,), distances (M,), box embeddings (M, 512), all CPU tensors (M = images x boxes).
    """
    count = min(max_images, len(dataset))
    images, targets = dataset[list(range(count))]
    images, targets = images.to(device), targets.to(device)
    boxes = random_square_boxes((count, boxes_per_image), device, generator)  # (n, B, 4)
    net.eval()
    with torch.no_grad():
        features = net.features(images)
        f_gt = maybe_normalize(net.embed(features, targets), norm)
        f_boxes = maybe_normalize(net.embed_sets(features, boxes.transpose(0, 1)).flatten(0, 1), norm).view(boxes_per_image, count, -1)
        distances = (f_boxes - f_gt[None]).norm(dim=2).t()  # (n, B)
    ious = box_iou_pairs(boxes, targets[:, None, :])
    return ious.flatten().cpu(), distances.flatten().cpu(), f_boxes.transpose(0, 1).reshape(count * boxes_per_image, -1).cpu()


def spearman(x, y):
    """Spearman rank correlation of two 1-D tensors (scipy)."""
    return float(spearmanr(x.numpy(), y.numpy()).statistic)
