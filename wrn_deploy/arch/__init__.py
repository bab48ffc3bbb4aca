"""Model registry: ``create_model(name, num_classes, dropout)`` for CIFAR WRNs, WRN-50-2 and WRN-101-2."""

from typing import TYPE_CHECKING

from wrn_deploy.arch.names import ArchSpec, parse_arch

if TYPE_CHECKING:  # names.py is read where no PyTorch is installed (cards check their arch with it)
    from torch import nn


def create_model(name: str, num_classes: int = 10, dropout: float = 0.0) -> "nn.Module":
    """Build the network named ``name`` on the CPU; move it with ``.to(device)`` afterwards."""
    spec = parse_arch(name)
    if spec.imagenet:
        from torchvision.models import wide_resnet50_2, wide_resnet101_2

        # torchvision's wide_resnet50_2 is the paper's WRN-50-2-bottleneck; neither has dropout.
        build = wide_resnet50_2 if spec.depth == 50 else wide_resnet101_2
        return build(weights=None, num_classes=num_classes)
    from wrn_deploy.arch.wrn import WideResNet

    return WideResNet(spec, num_classes=num_classes, dropout=dropout)


def default_input_size(name: str) -> int:
    return 224 if parse_arch(name).imagenet else 32


__all__ = ["ArchSpec", "create_model", "default_input_size", "parse_arch"]
