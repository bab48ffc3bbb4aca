"""Seeded permutations that pick the held-out split, the calibration images and training subsets.

Every card and calibration manifest made so far was drawn with ``torch.randperm(n,
generator=torch.Generator().manual_seed(seed))``. This gives the same permutation without importing
torch (seconds of every command that only runs ONNX Runtime): PyTorch's CPU generator is the
standard MT19937 seeded as NumPy's legacy ``RandomState(seed)`` seeds it, and its ``randperm`` is a
Fisher-Yates shuffle that swaps position ``i`` with ``i + (next 32-bit output mod (n - i))``.
tests/data/test_permutation.py holds it equal to torch's for small and ImageNet-sized ``n``.
"""

import numpy as np


def randperm(n: int, seed: int) -> np.ndarray:
    """``torch.randperm(n)`` from a CPU generator seeded with ``seed``, as int64. A seed outside
    0 .. 2**32 - 1 (which NumPy's MT19937 does not take) asks torch itself."""
    if not 0 <= seed < 2**32:
        import torch

        return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    steps = np.arange(max(n - 1, 0))
    raw = np.random.RandomState(seed)._bit_generator.random_raw(len(steps)).astype(np.int64)
    order = list(range(n))
    for i, j in enumerate((raw % (n - steps) + steps).tolist()):  # sequential by nature: a plain loop
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)
