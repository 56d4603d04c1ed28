"""Groups of K images and their prototypes (docs/method.md §10.4).

A batch is cut to a multiple of K and split into G = B // K consecutive groups; a group's
prototype is the mean embedding of its K ground-truth boxes. `--train_mode` decides which
prototype (or instance embedding) anchors each image and whose boxes it is compared with.
"""

import torch

TRAIN_MODES = ("self", "proto", "shuffle_self", "shuffle_proto")


def used_count(batch_size, group_size):
    """Images of a batch that form whole groups (the trailing B mod K are left out)."""
    return batch_size - batch_size % group_size


def permute_groups(values, group_size, perm):
    """Rows of (G * K, ...) `values` with group g replaced by group perm[g], slots kept."""
    groups = values.shape[0] // group_size
    return values.reshape(groups, group_size, *values.shape[1:])[perm].reshape(values.shape)


def group_prototypes(embeddings, group_size, perm=None):
    """(G * K, D) embeddings -> (G * K, D): each row the mean of its group's K rows, or with `perm`
    the mean of group perm[g] (gradients flow through the means)."""
    groups = embeddings.shape[0] // group_size
    means = embeddings.reshape(groups, group_size, -1).mean(dim=1)
    if perm is not None:
        means = means[perm]
    return means.repeat_interleave(group_size, dim=0)


def draw_group_permutation(groups, device, generator=None):
    """A uniform random permutation of the G groups (it may fix groups)."""
    return torch.randperm(groups, device=device, generator=generator)
