"""``data.permutation.randperm`` is torch's ``randperm`` from a seeded CPU generator, number for number:
every held-out split, calibration sample and training subset drawn before it stays the same."""

import numpy as np
import pytest
import torch

from wrn_deploy.data.permutation import randperm


@pytest.mark.parametrize("n,seed", [(0, 0), (1, 0), (2, 5), (10, 0), (5000, 3), (50000, 1), (200000, 2**32 - 1)])
def test_the_same_permutation_as_torch(n, seed):
    want = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    assert np.array_equal(randperm(n, seed), want)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40])
def test_seeds_outside_32_bits_go_to_torch(seed):
    assert np.array_equal(randperm(100, seed), torch.randperm(100, generator=torch.Generator().manual_seed(seed)).numpy())
