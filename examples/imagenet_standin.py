"""A stand-in for the pretrained ImageNet WRN that this project's machines cannot download, and an
ImageNet-style folder to run it on; both for the worked examples in docs/import.md.

``folder`` writes ``OUT/train/<wnid>/*.JPEG``, ``OUT/val/<wnid>/*.JPEG`` and ``LOC_synset_mapping.txt``
(the words of each WordNet id, as Kaggle's file has them) from five CIFAR-10 classes mapped onto the
ILSVRC2012 class of the same thing, upscaled to ImageNet-like sizes.

``model`` builds torchvision's ``wide_resnet50_2`` for those five classes, randomly initialised (its
own initialiser, fixed seed), then gives it real decision margins without training a single
convolution: the BatchNorm statistics are measured on images (instead of the initial 0 and 1) and the
classifier is fitted by logistic regression on the network's pooled features. The images are CIFAR-10
training images that the folder does not hold, so neither the held-out split nor the test split was
seen. The result is a torchvision state dict saved with ``torch.save``, as a fine-tuned model would be
(``--timm`` also writes the same weights as timm's model in timm's safetensors format).

It is a stand-in: a linear probe on random features, far from an ImageNet model's accuracy. What it
is for is that INT8 rounding flips only the images near its decision boundary, as with real weights,
so the pipeline's agreement gates measure something (a randomly initialised model's logits are near
ties and flip at any rounding).

    python examples/imagenet_standin.py folder --cifar CIFAR_FOLDER -o imagenet5
    python examples/imagenet_standin.py model --cifar CIFAR_FOLDER -o wide_resnet50_2_standin.pth

CIFAR_FOLDER holds ``train/<class>/*`` and ``test/<class>/*`` images (the extracted archives of
``shared/data/cifar10``).
"""

import argparse
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


def _images(cifar: Path, split: str, cls: str) -> list:
    files = sorted(p for p in (cifar / split / cls).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"no images in {cifar / split / cls}")
    return files


def _upscaled(path: Path, k: int):
    from PIL import Image

    return Image.open(path).convert("RGB").resize(SIZES[k % len(SIZES)], Image.BICUBIC)


def make_folder(cifar: Path, out: Path, train_per_class: int, val_per_class: int) -> None:
    if out.exists():
        raise SystemExit(f"{out} exists")
    if train_per_class > FIT_FIRST:
        raise SystemExit(f"at most {FIT_FIRST} training images a class (the rest are the stand-in's fit images)")
    k = 0
    for cls, (wnid, _) in CLASSES.items():
        for split, source, n in (("train", "train", train_per_class), ("val", "test", val_per_class)):
            (out / split / wnid).mkdir(parents=True)
            for i, path in enumerate(_images(cifar, source, cls)[:n]):
                _upscaled(path, k).save(out / split / wnid / f"{wnid}_{i}.JPEG", format="JPEG", quality=90)
                k += 1
    (out / "LOC_synset_mapping.txt").write_text("".join(f"{w} {words}\n" for w, words in CLASSES.values()))


def _fit_batches(cifar: Path, per_class: int, batch: int):
    """(images, labels) batches of fit images, preprocessed as torchvision's IMAGENET1K_V2 transforms."""
    import torch
    from torchvision.models import Wide_ResNet50_2_Weights

    transform = Wide_ResNet50_2_Weights.IMAGENET1K_V2.transforms()
    items = [(p, c) for c, cls in enumerate(CLASSES)
             for p in _images(cifar, "train", cls)[FIT_FIRST:FIT_FIRST + per_class]]
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(1))
    items = [items[i] for i in order]
    for s in range(0, len(items), batch):
        chunk = items[s:s + batch]
        yield (torch.stack([transform(_upscaled(p, s + j)) for j, (p, _) in enumerate(chunk)]),
               torch.tensor([c for _, c in chunk]))


def _measure_batchnorm(model, batches) -> None:
    """Replace the initial running statistics (0 and 1) by their average over ``batches``."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches
    model.train()
    with torch.no_grad():
        for x, _ in batches:
            model(x)
    model.eval()


def _features(model, batches) -> tuple:
    import torch

    body = torch.nn.Sequential(*list(model.children())[:-1], torch.nn.Flatten())
    feats, labels = [], []
    with torch.no_grad():
        for x, y in batches:
            feats.append(body(x))
            labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def fit_classifier(fc, feats, labels, weight_decay: float = 1e-2, steps: int = 200) -> float:
    """Multinomial logistic regression of ``labels`` on ``feats`` into ``fc`` (L2 on the weight);
    returns the training accuracy."""
    import torch

    mean, std = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / std  # standardised for the solver, folded back into fc below
    w = torch.zeros(fc.out_features, z.shape[1], requires_grad=True)
    b = torch.zeros(fc.out_features, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(z @ w.T + b, labels) + weight_decay * (w * w).sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        fc.weight.copy_(w / std)
        fc.bias.copy_(b - (w / std) @ mean)
        return float(((feats @ fc.weight.T + fc.bias).argmax(1) == labels).float().mean())


def make_model(cifar: Path, out: Path, per_class: int, timm_out: Path | None) -> None:
    import torch
    import torchvision

    for path in (out, timm_out):
        if path is not None and path.exists():
            raise SystemExit(f"{path} exists")
    torch.manual_seed(0)
    model = torchvision.models.wide_resnet50_2(num_classes=len(CLASSES))
    batches = list(_fit_batches(cifar, per_class, 50))
    _measure_batchnorm(model, batches)
    accuracy = fit_classifier(model.fc, *_features(model, batches))
    torch.save(model.state_dict(), out)
    print(f"wrote {out}: {len(batches) * 50} fit images, training accuracy {100 * accuracy:.1f}%")
    if timm_out is not None:
        import timm
        from safetensors.torch import save_file

        twin = timm.create_model("wide_resnet50_2", num_classes=len(CLASSES))
        twin.load_state_dict(model.state_dict())
        save_file({k: v.contiguous() for k, v in twin.state_dict().items()}, str(timm_out))
        print(f"wrote {timm_out} (the same weights as timm's wide_resnet50_2, timm's safetensors)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    folder = sub.add_parser("folder", help="the ImageNet-style folder")
    folder.add_argument("--train-per-class", type=int, default=1100)
    folder.add_argument("--val-per-class", type=int, default=50)
    model = sub.add_parser("model", help="the stand-in wide_resnet50_2 state dict")
    model.add_argument("--fit-per-class", type=int, default=100)
    model.add_argument("--timm", type=Path, help="also write the weights as timm's model.safetensors")
    for p in (folder, model):
        p.add_argument("--cifar", type=Path, required=True, help="CIFAR-10 as train/<class>/, test/<class>/")
        p.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "folder":
        make_folder(args.cifar, args.out, args.train_per_class, args.val_per_class)
    else:
        make_model(args.cifar, args.out, args.fit_per_class, args.timm)


if __name__ == "__main__":
    main()
