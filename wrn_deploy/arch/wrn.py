"""Pre-activation Wide ResNet for 32x32 inputs (Zagoruyko & Komodakis 2016, Table 1).

stem conv3x3(16) -> 3 groups of N blocks, widths 16k/32k/64k, strides 1/2/2 -> BN-ReLU-avgpool-linear.
A block runs BN-ReLU-conv for each kernel size in its type (B(3,3) by default) with dropout between
convolutions, and adds either the input (identity) or a 1x1 conv of the pre-activated input when the
shape changes.
"""

import torch
from torch import nn

from wrn_deploy.arch.names import ArchSpec


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernels: tuple, dropout: float):
        super().__init__()
        # The stride goes on the first 3x3 conv: a strided 1x1 would drop three of four pixels.
        stride_at = kernels.index(3) if 3 in kernels else 0
        self.bns = nn.ModuleList()
        self.convs = nn.ModuleList()
        self.drops = nn.ModuleList()
        c = c_in
        for i, k in enumerate(kernels):
            self.bns.append(nn.BatchNorm2d(c))
            # Dropout sits after the ReLU of every conv but the first (paper, section 2.4).
            self.drops.append(nn.Dropout(dropout) if i > 0 and dropout > 0 else nn.Identity())
            s = stride if i == stride_at else 1
            self.convs.append(nn.Conv2d(c, c_out, k, s, padding=k // 2, bias=False))
            c = c_out
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bns[0](x))
        # The projection reads the pre-activated input; the identity reads the raw residual stream.
        residual = x if self.shortcut is None else self.shortcut(out)
        out = self.convs[0](self.drops[0](out))
        for bn, drop, conv in zip(self.bns[1:], self.drops[1:], self.convs[1:]):
            out = conv(drop(torch.relu(bn(out))))
        return out + residual


class WideResNet(nn.Module):
    def __init__(self, spec: ArchSpec, num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        widths = [16 * spec.width, 32 * spec.width, 64 * spec.width]
        self.stem = nn.Conv2d(3, 16, 3, 1, padding=1, bias=False)
        layers, c = [], 16
        for width, stride in zip(widths, (1, 2, 2)):
            for i in range(spec.blocks_per_group):
                layers.append(Block(c, width, stride if i == 0 else 1, spec.block, dropout))
                c = width
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.stem.weight.is_meta:  # built to load a checkpoint into: nothing to draw, and
            return                     # torch.nn.init would import torch._dynamo (2 s) to do nothing
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # He/MSRA
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        x = self.pool(torch.relu(self.bn(x)))
        return self.fc(torch.flatten(x, 1))
