"""Parse architecture names such as ``wrn-28-10``, ``wrn-40-2-B(1,3,1)``, ``wrn-50-2`` or ``wrn-101-2``.

A CIFAR WRN-d-k has 3 groups of N blocks. The paper names depth two ways, and we follow both:
- the block types of section 2.1 (Table 2: B(3,1,3), B(1,3,1), B(1,3), B(3,1), B(3,1,1)) keep the
  basic-block count, d = 6N + 4 (WRN-22-2-B(3,1,3) has 3 blocks per group, 1.1M parameters);
- the deepening factor l of section 2.2 (Table 3: B(3), B(3,3), B(3,3,3), B(3,3,3,3)) counts every
  convolution, d = 3*N*l + 4 (WRN-40-2-B(3,3,3) has 4 blocks per group, 2.2M parameters).
"""

import re
from dataclasses import dataclass

from wrn_deploy.errors import UserError

# Block types of the paper (section 2.1) and the deepening factor l of section 2.2 (B(3), B(3,3,3), ...).
BLOCK_TYPES = {
    (3, 3), (3, 1, 3), (1, 3, 1), (1, 3), (3, 1), (3, 1, 1), (3,), (3, 3, 3), (3, 3, 3, 3),
}
# The ImageNet WRNs: torchvision's wide_resnet50_2 (the paper's WRN-50-2-bottleneck) and
# wide_resnet101_2 (the same widening of ResNet-101), bottleneck blocks with the stride on the 3x3.
IMAGENET_NAMES = {"wrn-50-2": 50, "wrn-101-2": 101}


def layers_per_block_unit(block: tuple) -> int:
    """Depth added by one block in each of the 3 groups (see the module docstring)."""
    return 3 * len(block) if set(block) == {3} else 6

VALID_FORMS = (
    "valid forms: wrn-D-K (D = 6N+4, K >= 1), wrn-D-K-B(a,b,...) or wrn-D-K-bab... with block "
    "B(3,3) B(3,1,3) B(1,3,1) B(1,3) B(3,1) B(3,1,1) B(3) B(3,3,3) B(3,3,3,3) "
    "(D = 6N+4; for B(3), B(3,3,3), B(3,3,3,3): D = 3*N*l+4), and wrn-50-2, wrn-101-2 (ImageNet)"
)

_NAME = re.compile(r"^wrn-(\d+)-(\d+)(?:-(?:[bB]\(([0-9, ]+)\)|[bB]([0-9]+)))?$")


@dataclass(frozen=True)
class ArchSpec:
    depth: int
    width: int
    block: tuple = (3, 3)
    imagenet: bool = False

    @property
    def blocks_per_group(self) -> int:
        return (self.depth - 4) // layers_per_block_unit(self.block)

    @property
    def name(self) -> str:
        if self.imagenet:
            return f"wrn-{self.depth}-{self.width}"
        suffix = "" if self.block == (3, 3) else "-B(" + ",".join(map(str, self.block)) + ")"
        return f"wrn-{self.depth}-{self.width}{suffix}"


def parse_arch(name: str) -> ArchSpec:
    """Return the ArchSpec for ``name`` or raise UserError listing the valid forms."""
    key = name.strip().lower()
    if key in IMAGENET_NAMES:
        return ArchSpec(depth=IMAGENET_NAMES[key], width=2, block=(1, 3, 1), imagenet=True)
    m = _NAME.match(key)
    if not m:
        raise UserError(f"unknown architecture {name!r}; {VALID_FORMS}")
    depth, width = int(m.group(1)), int(m.group(2))
    digits = m.group(3) or m.group(4)
    block = (3, 3)
    if digits:
        parts = digits.replace(" ", "").split(",") if "," in digits else list(digits)
        block = tuple(int(p) for p in parts if p)
    if block not in BLOCK_TYPES:
        raise UserError(f"unknown block type B{block} in {name!r}; {VALID_FORMS}")
    if width < 1:
        raise UserError(f"widening factor k must be >= 1 in {name!r}; {VALID_FORMS}")
    per_block = layers_per_block_unit(block)
    if depth < per_block + 4 or (depth - 4) % per_block:
        raise UserError(
            f"depth {depth} does not fit block B{block} in {name!r}: need depth = {per_block}*N+4; "
            + VALID_FORMS
        )
    return ArchSpec(depth=depth, width=width, block=block)
