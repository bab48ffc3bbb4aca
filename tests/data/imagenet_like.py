"""ImageNet-style folders for tests, in every layout ``wrn_deploy.data.imagenet`` reads, made from
real CIFAR-10 test images upscaled to varied sizes (ImageNet itself is not on these machines): four
WordNet-id classes, 10 training and 3 validation JPEGs each, the same pictures in every layout."""

import shutil
from pathlib import Path

# Four real ILSVRC2012 classes, their ILSVRC2012_IDs (the devkit's numbering, not the sorted order)
# and their words as the devkit's meta.mat has them.
CLASSES = {"n01440764": (449, "tench, Tinca tinca"),
           "n01443537": (450, "goldfish, Carassius auratus"),
           "n01484850": (442, "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias"),
           "n01491361": (443, "tiger shark, Galeocerdo cuvieri")}
WNIDS = sorted(CLASSES)
TORCHVISION_NAMES = ["tench", "goldfish", "great white shark", "tiger shark"]  # its weights' categories
SIZES = [(96, 80), (120, 90), (75, 110), (100, 100), (110, 70), (90, 120), (81, 65), (70, 96)]
PER_CLASS = {"train": 10, "val": 3}


def make_class_folders(root: Path, cifar_dir: Path) -> dict:
    """root/train/<wnid>/*.JPEG and root/val/<wnid>/ILSVRC2012_val_NNNNNNNN.JPEG; returns the
    validation images' {file stem: wnid} (numbers interleave the classes, as ImageNet's do)."""
    from PIL import Image

    sources = sorted((cifar_dir / "test").glob("*/*.png"))
    k, labels = 0, {}
    for split, n in PER_CLASS.items():
        for c, wnid in enumerate(WNIDS):
            (root / split / wnid).mkdir(parents=True)
            for i in range(n):
                w, h = SIZES[k % len(SIZES)]
                im = Image.open(sources[(k * 53) % len(sources)]).convert("RGB").resize((w, h), Image.BICUBIC)
                name = f"{wnid}_{i}" if split == "train" else f"ILSVRC2012_val_{i * len(WNIDS) + c + 1:08d}"
                im.save(root / split / wnid / f"{name}.JPEG", format="JPEG", quality=90)
                if split == "val":
                    labels[name] = wnid
                k += 1
    return labels


def flatten_val(root: Path) -> None:
    """val/<wnid>/x.JPEG -> val/x.JPEG (the validation archive as it unpacks)."""
    for f in sorted((root / "val").glob("*/*.JPEG")):
        f.rename(root / "val" / f.name)
    for d in (root / "val").iterdir():
        if d.is_dir():
            d.rmdir()


def write_meta_bin(root: Path, labels: dict) -> None:
    """torchvision's meta.bin: ({wnid: words}, [wnid of each validation image, by file number])."""
    import torch

    words = {w: tuple(s.strip() for s in CLASSES[w][1].split(",")) for w in WNIDS}
    torch.save((words, [labels[k] for k in sorted(labels)]), root / "meta.bin")


def write_devkit(root: Path, labels: dict) -> None:
    """ILSVRC2012_devkit_t12/data/: meta.mat (the four leaf synsets and one parent synset, as the
    real file mixes them) and the ground truth (ILSVRC2012_IDs, one line per file number)."""
    import numpy as np
    from scipy.io import savemat

    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O"),
             ("children", "O"), ("wordnet_height", "O"), ("num_train_images", "O")]
    rows = [(i, w, words, "", 0, np.zeros(0), 0, 1300) for w, (i, words) in CLASSES.items()]
    rows.append((1001, "n01440000", "fish", "", 2, np.array([449, 450]), 1, 0))  # a parent: not a class
    savemat(data / "meta.mat", {"synsets": np.array(rows, dtype=dtype).reshape(-1, 1)})
    ids = [str(CLASSES[labels[k]][0]) for k in sorted(labels)]
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(ids) + "\n")


def write_kaggle(root: Path, labels: dict) -> None:
    """Kaggle's LOC_val_solution.csv and LOC_synset_mapping.txt, and its ILSVRC/Data/CLS-LOC folders."""
    rows = [f"{k},{w} 10 20 30 40 {w} 5 6 7 8" for k, w in sorted(labels.items())]
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {CLASSES[w][1]}\n" for w in WNIDS))
    images = root / "ILSVRC" / "Data" / "CLS-LOC"
    images.mkdir(parents=True)
    for split in ("train", "val"):
        shutil.move(str(root / split), str(images / split))


def make_layouts(base: Path, cifar_dir: Path) -> dict:
    """{layout name: root} for: class folders alone, torchvision's (class folders + meta.bin), the
    flat validation folder with each label file, and Kaggle's; plus "labels": {file stem: wnid}."""
    out = {}
    for name in ("folders", "torchvision", "flat-devkit", "flat-val-txt", "kaggle"):
        out[name] = base / name
        labels = make_class_folders(out[name], cifar_dir)
    write_meta_bin(out["torchvision"], labels)
    for name in ("flat-devkit", "flat-val-txt", "kaggle"):
        flatten_val(out[name])
    write_devkit(out["flat-devkit"], labels)
    index = {w: i for i, w in enumerate(WNIDS)}
    (out["flat-val-txt"] / "val.txt").write_text(
        "".join(f"{k}.JPEG {index[w] if i % 2 else w}\n" for i, (k, w) in enumerate(sorted(labels.items()))))
    write_kaggle(out["kaggle"], labels)
    out["labels"] = labels
    return out
