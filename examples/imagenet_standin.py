"""A stand-in for the pretrained ImageNet WRN that this project's machines cannot download, and an
ImageNet-style folder to run it on; both for the worked examples in docs/import.md.

``folder`` writes ``OUT/train/<wnid>/*.JPEG``, ``OUT/val/<wnid>/*.JPEG`` and ``LOC_synset_mapping.txt``
(the words of each WordNet id, as Kaggle's file has them) from five CIFAR-10 classes mapped onto the
ILSVRC2012 class of the same thing, upscaled to ImageNet-like sizes. Validation images are CIFAR-10
test images, then, past the ~100 a class that ``shared`` holds, CIFAR-10 training images that
neither the folder's training part nor the stand-in's fit images use.

``model`` trains torchvision's ``wide_resnet50_2`` for those five classes from its own random
initialisation (fixed seed) at 64 pixels: plain PyTorch, SGD, random crops and flips, 3 epochs on
CIFAR-10 training images that the folder does not hold (so neither its held-out split nor its
validation images were seen). It saves ``model.state_dict()`` with ``torch.save``, as a model
fine-tuned elsewhere would be (``--timm`` also writes the same weights as timm's model in timm's
safetensors format). Import it with the preprocessing it was trained with: shorter side resized to
73 (bilinear), centre crop 64, ImageNet's mean and std.

It is a stand-in: a few minutes of CPU training, not an ImageNet model. The first stand-in tried
here was a linear probe: random convolutions, measured BatchNorm statistics and a fitted classifier,
at 224 pixels. INT8 moved that network's pooled features by 24% of their norm, in the TensorRT
form and the OpenVINO form alike, and flipped half its predictions (docs/import.md). Random weights
do not quantize like trained ones, so the stand-in is trained.

    python examples/imagenet_standin.py folder --cifar CIFAR_FOLDER -o imagenet5
    python examples/imagenet_standin.py model --cifar CIFAR_FOLDER -o wide_resnet50_2_standin.pth  # ~20 min, 2 cores
    (--epochs 8: an hour, 68% instead of 50% on the validation images; docs/import.md)

CIFAR_FOLDER holds ``train/<class>/*`` and ``test/<class>/*`` images (the extracted archives of
``shared/data/cifar10``).
"""

import argparse
import shutil
import tempfile
from pathlib import Path

# CIFAR-10 class -> (ILSVRC2012 WordNet id, its words as LOC_synset_mapping.txt has them). Sorted by
# WordNet id, which is the class order of ImageNet models and of wrn-deploy's imagenet data.
CLASSES = {"frog": ("n01641577", "bullfrog, Rana catesbeiana"),
           "horse": ("n02389026", "sorrel"),
           "airplane": ("n02690373", "airliner"),
           "ship": ("n03095699", "container ship, containership, container vessel"),
           "truck": ("n03796401", "moving van")}
NAMES = ["bullfrog", "sorrel", "airliner", "container ship", "moving van"]  # torchvision's category names
SIZES = [(320, 240), (240, 320), (256, 256), (300, 225), (288, 288), (250, 334), (400, 300), (232, 260)]
FIT_FIRST = 3000  # CIFAR training images from this index on are fit images; the folder takes those before
INPUT_SIZE, RESIZE = 64, 73  # the stand-in's preprocessing: shorter side to 73 (bilinear), centre crop 64
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as torchvision's weights use
BATCH = 64  # fit images per training step


def _images(cifar: Path, split: str, cls: str) -> list:
    if not (cifar / split / cls).is_dir():
        raise SystemExit(f"{cifar / split / cls} is not a folder (--cifar: CIFAR-10 as train/<class>/, test/<class>/)")
    files = sorted(p for p in (cifar / split / cls).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"no images in {cifar / split / cls}")
    return files


def _upscaled(path: Path, k: int):
    from PIL import Image

    return Image.open(path).convert("RGB").resize(SIZES[k % len(SIZES)], Image.BICUBIC)


def make_folder(cifar: Path, out: Path, train_per_class: int, val_per_class: int) -> None:
    from wrn_deploy.fileio import umask

    if out.exists():
        raise SystemExit(f"{out} exists")
    if train_per_class > FIT_FIRST:
        raise SystemExit(f"at most {FIT_FIRST} training images a class (the rest are the stand-in's fit images)")
    if not out.parent.is_dir():
        raise SystemExit(f"output folder {out.parent} does not exist")
    sources = {(cls, split): _images(cifar, split, cls) for cls in CLASSES for split in ("train", "test")}
    # Written under a private name and renamed into place when complete: an interrupted or a second run
    # at the same time leaves no half folder under OUT's name and removes nothing of another's.
    part = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_folder(part, sources, train_per_class, val_per_class)
        part.chmod(0o777 & ~umask())  # mkdtemp's 0700 would hide the folder from other users
        try:
            part.rename(out)
        except OSError:
            raise SystemExit(f"{out} appeared while this ran (another run?)") from None
    finally:
        shutil.rmtree(part, ignore_errors=True)


def _val_sources(sources: dict, cls: str, train_per_class: int, n: int) -> list:
    """The test images, then the training images between the folder's and the fit images."""
    val = (sources[cls, "test"] + sources[cls, "train"][train_per_class:FIT_FIRST])[:n]
    if len(val) < n:
        raise SystemExit(f"at most {len(val)} validation images of {cls} (its test images, and the training images "
                         f"from {train_per_class} to {FIT_FIRST}); lower --val-per-class")
    return val


def _write_folder(part: Path, sources: dict, train_per_class: int, val_per_class: int) -> None:
    for cls in CLASSES:  # checked first, like the validation images
        if len(sources[cls, "train"]) < train_per_class:
            raise SystemExit(f"only {len(sources[cls, 'train'])} training images of {cls}; lower --train-per-class")
    val = {cls: _val_sources(sources, cls, train_per_class, val_per_class) for cls in CLASSES}
    k = 0
    for cls, (wnid, _) in CLASSES.items():
        for split, files in (("train", sources[cls, "train"][:train_per_class]), ("val", val[cls])):
            (part / split / wnid).mkdir(parents=True)
            for i, path in enumerate(files):
                _upscaled(path, k).save(part / split / wnid / f"{wnid}_{i}.JPEG", format="JPEG", quality=90)
                k += 1
    (part / "LOC_synset_mapping.txt").write_text("".join(f"{w} {words}\n" for w, words in CLASSES.values()))


def _fit_images(cifar: Path, per_class: int, size: int) -> tuple:
    """The fit images as uint8 (N, 3, size, size) tensors (upscaled bilinear, as the card's resize
    does) and their labels."""
    import numpy as np
    import torch
    from PIL import Image

    images, labels = [], []
    for c, cls in enumerate(CLASSES):
        files = _images(cifar, "train", cls)[FIT_FIRST:FIT_FIRST + per_class]
        if len(files) < per_class:
            raise SystemExit(f"only {len(files)} fit images of {cls} (its training images from {FIT_FIRST} on); "
                             "lower --fit-per-class")
        for p in files:
            im = Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)
            images.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
            labels.append(c)
    return torch.stack(images), torch.tensor(labels)


def train(model, images, labels, crop: int, epochs: int, batch: int = BATCH) -> None:
    """SGD with Nesterov momentum, cosine learning rate, random crops and flips; prints each epoch."""
    import torch

    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    steps = epochs * (len(images) // batch)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps, pct_start=0.15)
    g = torch.Generator().manual_seed(0)
    model.train()
    for epoch in range(epochs):
        order, right, seen = torch.randperm(len(images), generator=g), 0, 0
        for s in range(0, len(images) - batch + 1, batch):
            idx = order[s:s + batch]
            y0, x0 = torch.randint(0, images.shape[-1] - crop + 1, (2,), generator=g).tolist()
            x = images[idx, :, y0:y0 + crop, x0:x0 + crop].float() / 255
            flip = torch.rand(len(idx), generator=g) < 0.5
            x[flip] = x[flip].flip(-1)
            out = model((x - mean) / std)
            loss = torch.nn.functional.cross_entropy(out, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            right += int((out.argmax(1) == labels[idx]).sum())
            seen += len(idx)
        print(f"epoch {epoch + 1}/{epochs}: training accuracy {100 * right / seen:.1f}%", flush=True)
    model.eval()


def make_model(cifar: Path, out: Path, per_class: int, epochs: int, timm_out: Path | None) -> None:
    import torch
    import torchvision

    from wrn_deploy.fileio import atomic_output

    if per_class * len(CLASSES) < BATCH:
        raise SystemExit(f"--fit-per-class {per_class} gives fewer than one batch of {BATCH} images; give at least "
                         f"{-(-BATCH // len(CLASSES))}")
    if timm_out is not None and timm_out.resolve() == out.resolve():
        raise SystemExit("-o and --timm name the same file")
    for path in (out, timm_out):  # checked before an hour of training, not after
        if path is not None and path.exists():
            raise SystemExit(f"{path} exists")
        if path is not None and not path.parent.is_dir():
            raise SystemExit(f"output folder {path.parent} does not exist")
    torch.manual_seed(0)
    model = torchvision.models.wide_resnet50_2(num_classes=len(CLASSES))
    images, labels = _fit_images(cifar, per_class, RESIZE)
    train(model, images, labels, INPUT_SIZE, epochs)
    with atomic_output(out, replace=False) as part:  # renamed into place with the umask's permissions
        torch.save(model.state_dict(), part)
    print(f"wrote {out}")
    if timm_out is not None:
        import timm
        from safetensors.torch import save_file

        twin = timm.create_model("wide_resnet50_2", num_classes=len(CLASSES))
        twin.load_state_dict(model.state_dict())
        with atomic_output(timm_out, replace=False) as part:
            save_file({k: v.contiguous() for k, v in twin.state_dict().items()}, str(part))
        print(f"wrote {timm_out} (the same weights as timm's wide_resnet50_2, timm's safetensors)")


def _count(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a count of at least 1")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    folder = sub.add_parser("folder", help="the ImageNet-style folder")
    folder.add_argument("--train-per-class", type=_count, default=1100)
    folder.add_argument("--val-per-class", type=_count, default=50)
    model = sub.add_parser("model", help="the stand-in wide_resnet50_2 state dict")
    model.add_argument("--fit-per-class", type=_count, default=800)
    model.add_argument("--epochs", type=_count, default=3)
    model.add_argument("--timm", type=Path, help="also write the weights as timm's model.safetensors")
    for p in (folder, model):
        p.add_argument("--cifar", type=Path, required=True, help="CIFAR-10 as train/<class>/, test/<class>/")
        p.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "folder":
        make_folder(args.cifar, args.out, args.train_per_class, args.val_per_class)
    else:
        make_model(args.cifar, args.out, args.fit_per_class, args.epochs, args.timm)


if __name__ == "__main__":
    main()
