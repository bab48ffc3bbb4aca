"""Input normalisation as part of the model: the deployed graph takes RGB images in [0, 1]."""

import torch
from torch import nn


class Normalized(nn.Module):
    """``net((x - mean) / std)`` for NCHW float images in [0, 1]."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
