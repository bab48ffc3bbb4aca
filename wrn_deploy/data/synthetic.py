"""A built-in, deterministic 10-class image set: shapes and textures drawn on the fly.

Every image has a random background and foreground colour, position, size and pixel noise, so the
mean colour says almost nothing about the class; a network has to learn the shape. No file is read
or written: the same seed always gives the same pixels.
"""

import torch

CLASSES = ["disk", "square", "ring", "plus", "diamond", "triangle",
           "h-stripes", "v-stripes", "checker", "x-cross"]
SIZE = 32


def _mask(cls: int, cy, cx, r, period, y, x) -> torch.Tensor:
    """Foreground mask (n,H,W) of class ``cls`` from per-image centre, radius and stripe period."""
    dy, dx = y - cy, x - cx
    ady, adx = dy.abs(), dx.abs()
    thick = (r / 3).clamp(min=1.5)
    inside = torch.maximum(ady, adx) <= r
    h_on = torch.remainder(y, period) < period / 2
    v_on = torch.remainder(x, period) < period / 2
    name = CLASSES[cls]
    if name == "disk":
        return dy**2 + dx**2 <= r**2
    if name == "square":
        return inside
    if name == "ring":
        return (torch.sqrt(dy**2 + dx**2) - r).abs() <= thick / 1.5
    if name == "plus":
        return (torch.minimum(ady, adx) <= thick / 2) & inside
    if name == "diamond":
        return ady + adx <= r
    if name == "triangle":  # apex up
        return (dy <= r) & (dy >= -r) & (adx <= (dy + r) / 2)
    if name == "h-stripes":
        return h_on & inside
    if name == "v-stripes":
        return v_on & inside
    if name == "checker":
        return (h_on ^ v_on) & inside
    return (((dy - dx).abs() <= thick / 1.4) | ((dy + dx).abs() <= thick / 1.4)) & inside  # x-cross


def make_synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uint8 images (n, 3, 32, 32) and int64 labels, balanced over the 10 classes."""
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % len(CLASSES)
    label = label[torch.randperm(n, generator=g)]
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    r = 5 + 7 * u(n, 1, 1)                                            # radius 5..12 px
    cy = 10 + 12 * u(n, 1, 1)
    cx = 10 + 12 * u(n, 1, 1)
    period = torch.randint(3, 6, (n, 1, 1), generator=g).float()      # stripe period 3..5 px
    grid = torch.arange(SIZE, dtype=torch.float32)
    mask = torch.zeros(n, SIZE, SIZE, dtype=torch.bool)
    for c in range(len(CLASSES)):
        i = label == c
        mask[i] = _mask(c, cy[i], cx[i], r[i], period[i], grid.view(1, -1, 1), grid.view(1, 1, -1))
    bg = u(n, 3, 1, 1)
    fg = u(n, 3, 1, 1)
    # Keep the two colours apart in brightness so every shape is visible.
    fg = torch.where((fg - bg).abs().mean(1, keepdim=True) < 0.25, 1 - bg, fg)
    img = torch.where(mask.unsqueeze(1), fg, bg) + 0.08 * torch.randn(n, 3, SIZE, SIZE, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), label
