"""What a card needs besides weights (class names, input size, resize, interpolation, mean, std),
from the source library's own metadata where the user names the weights: torchvision's weight
enums (``Wide_ResNet50_2_Weights.IMAGENET1K_V2.meta`` and ``.transforms()``) and timm's pretrained
configurations (resolved as timm's validation script does: the test size where one is given).
Nothing is downloaded: both libraries keep this metadata in their code."""

import math

from wrn_deploy.card import INTERPOLATIONS
from wrn_deploy.errors import UserError

TORCHVISION_MODELS = {"wrn-50-2": "wide_resnet50_2", "wrn-101-2": "wide_resnet101_2"}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The normalisation both CIFAR ports train and test with (their train.py/main.py): the CIFAR-10 pixel
# statistics of the original Torch code, in 0-255 units.
PORT_MEAN = tuple(v / 255 for v in (125.3, 123.0, 113.9))
PORT_STD = tuple(v / 255 for v in (63.0, 62.1, 66.7))


def torchvision_facts(arch: str, weights: str) -> dict:
    """Card facts of torchvision's weights ``weights`` (``IMAGENET1K_V2`` or the enum's full name)."""
    from torchvision.models import get_model_weights

    if arch not in TORCHVISION_MODELS:
        raise UserError(f"--weights {weights!r}: torchvision's weights are for wrn-50-2 and wrn-101-2, not {arch}")
    enum = get_model_weights(TORCHVISION_MODELS[arch])
    key = weights.rsplit(".", 1)[-1].upper()
    if key not in enum.__members__:
        raise UserError(f"--weights {weights!r}: {enum.__name__} has {', '.join(enum.__members__)}")
    w = enum[key]
    t = w.transforms()
    if not t.antialias:
        raise UserError(f"--weights {weights!r}: its transforms resize without antialiasing, which wrn-deploy "
                        "does not reproduce")
    return {"classes": tuple(w.meta["categories"]), "input_size": int(t.crop_size[0]),
            "resize": int(t.resize_size[0]), "interpolation": t.interpolation.value, "mean": tuple(t.mean),
            "std": tuple(t.std), "data": "imagenet",
            "published": {"weights": f"{enum.__name__}.{w.name}", "metrics": w.meta.get("_metrics", {}),
                          "recipe": w.meta.get("recipe", "")}}


def timm_facts(arch: str, weights: str) -> dict:
    """Card facts of timm's pretrained tag ``weights`` (``racm_in1k`` or ``wide_resnet50_2.racm_in1k``)."""
    try:
        import timm
        from timm.data import resolve_data_config
    except ImportError:
        raise UserError("--from timm --weights reads timm's pretrained configuration, and timm is not installed: "
                        "pip install 'wrn-deploy[timm]' (or give --classes, --mean, --std, --input-size, "
                        "--resize and --interpolation)") from None
    if arch not in TORCHVISION_MODELS:
        raise UserError(f"--weights {weights!r}: timm's wide_resnet weights are for wrn-50-2 and wrn-101-2, not {arch}")
    model = TORCHVISION_MODELS[arch]
    tag = weights.removeprefix("timm/").removeprefix(model + ".")
    try:
        cfg = timm.models.get_pretrained_cfg(f"{model}.{tag}")
    except RuntimeError:
        cfg = None
    if cfg is None:
        known = ", ".join(n.split(".", 1)[1] for n in timm.list_pretrained(model + ".*"))
        raise UserError(f"--weights {weights!r}: timm's {model} has the pretrained tags {known}")
    data = resolve_data_config(pretrained_cfg=cfg.to_dict(), use_test_size=True)
    _, h, w = data["input_size"]
    if h != w or data.get("crop_mode", "center") != "center" or data["interpolation"] not in INTERPOLATIONS:
        raise UserError(f"--weights {weights!r}: timm preprocesses it as {data}, which is no square centre crop "
                        f"with {' or '.join(INTERPOLATIONS)} resizing")
    facts = {"input_size": int(h), "resize": math.floor(h / data["crop_pct"]),  # timm's eval rule
             "interpolation": data["interpolation"], "mean": tuple(data["mean"]), "std": tuple(data["std"]),
             "published": {"weights": f"timm/{model}.{tag}"}}
    if cfg.num_classes == 1000:  # ImageNet-1k, in the order torchvision's weights name it
        from torchvision.models import Wide_ResNet50_2_Weights

        facts.update(classes=tuple(Wide_ResNet50_2_Weights.IMAGENET1K_V1.meta["categories"]), data="imagenet")
    return facts


def layout_facts(layout_name: str) -> dict:
    """What the CIFAR ports' own code fixes: the normalisation and the input, 32 pixels as they are."""
    if layout_name in ("xternalz", "szagoruyko"):
        return {"mean": PORT_MEAN, "std": PORT_STD, "input_size": 32, "resize": None}
    return {}


def dataset_facts(data: str | None) -> dict:
    """What wrn-deploy knows of a dataset by name: published statistics, and fixed class names."""
    if data is None:
        return {}
    from wrn_deploy.data.table import TABLE

    facts = {"data": data}
    info = TABLE[data]
    if info.mean is not None:
        facts.update(mean=tuple(info.mean), std=tuple(info.std))
    if data == "cifar10":
        facts["classes"] = CIFAR10_CLASSES
    elif data == "svhn":
        facts["classes"] = tuple(str(i) for i in range(10))
    elif data == "synthetic":
        from wrn_deploy.data.synthetic import CLASSES

        facts["classes"] = tuple(CLASSES)
    return facts


def read_classes(path) -> tuple:
    """Class names from a text file, one a line, in the classifier's order (blank lines ignored)."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--classes {path} " + ("is not a regular file" if path.exists() else "does not exist"))
    if path.stat().st_size > 1 << 20:
        raise UserError(f"--classes {path} is larger than 1 MiB; it should hold one class name a line")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--classes {path} is not UTF-8 text") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise UserError(f"--classes {path} names no class")
    return names
