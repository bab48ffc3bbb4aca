import torch
import torch.nn.functional as F

from wrn_deploy.data.batches import PAD, crop_flip, draw_crop_flip, tensor_batches
from wrn_deploy.data.sources import TensorSplit


def _reference(x, dy, dx, flip):
    out = []
    for img, i, j, f in zip(x, dy, dx, flip):
        p = F.pad(img[None], (PAD,) * 4, mode="reflect")[0]
        crop = p[:, i:i + x.shape[2], j:j + x.shape[3]]
        out.append(crop.flip(2) if f else crop)
    return torch.stack(out)


def test_crop_flip_matches_a_per_image_reference():
    x = torch.rand(16, 3, 8, 8)
    seed = 5
    dy, dx, flip = draw_crop_flip(16, torch.Generator().manual_seed(seed))
    got = crop_flip(x, dy, dx, flip)
    torch.testing.assert_close(got, _reference(x, dy, dx, flip), rtol=0, atol=0)
    assert flip.any() and (~flip).any()


def _split(n=50):
    return TensorSplit(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8), torch.arange(n),
                       [str(i) for i in range(n)])


def test_ranks_partition_each_global_batch():
    split = _split()
    kw = dict(shuffle=True, augment=True, seed=3, drop_last=True)
    one = list(tensor_batches(split, 8, "cpu", **kw))
    two = [list(tensor_batches(split, 8, "cpu", rank=r, world=2, **kw)) for r in (0, 1)]
    assert len(one) == 6 and all(len(b) == 6 for b in two)
    for (x, y), (x0, y0), (x1, y1) in zip(one, *two):
        # Same images, same crops and flips: rank r holds samples r, r+2, ... of the global batch.
        assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)
        assert x.max() <= 1 and x.min() >= 0


def test_same_seed_same_order_other_seed_other_order():
    split = _split()
    a = [y.tolist() for _, y in tensor_batches(split, 10, "cpu", shuffle=True, seed=1)]
    b = [y.tolist() for _, y in tensor_batches(split, 10, "cpu", shuffle=True, seed=1)]
    c = [y.tolist() for _, y in tensor_batches(split, 10, "cpu", shuffle=True, seed=2)]
    assert a == b != c
