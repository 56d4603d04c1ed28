"""utils/successor/groups.py: groups, prototypes and group permutations, by hand."""

import torch

from utils.successor.groups import group_prototypes, permute_groups, used_count


def test_groups_and_prototypes_by_hand():
    emb = torch.arange(12.0).view(6, 2)  # K = 2: groups {0, 1}, {2, 3}, {4, 5}
    protos = group_prototypes(emb, 2)
    assert protos.tolist() == [[1, 2], [1, 2], [5, 6], [5, 6], [9, 10], [9, 10]]
    perm = torch.tensor([2, 0, 1])
    assert group_prototypes(emb, 2, perm).tolist() == [[9, 10], [9, 10], [1, 2], [1, 2], [5, 6], [5, 6]]
    assert permute_groups(emb, 2, perm)[:, 0].tolist() == [8, 10, 0, 2, 4, 6]
    assert used_count(53, 5) == 50 and used_count(4, 5) == 0
