"""ImageNet (ILSVRC2012) as users hold it, for ``--data imagenet --data-dir ROOT``:

- torchvision's ``ImageNet`` layout: ``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG`` and ``meta.bin``
  (what ``torchvision.datasets.ImageNet`` prepares from the archives);
- class folders alone: ``train/<wnid>/...`` and ``val/<wnid>/...`` (or ``test/<wnid>/``);
- the flat validation folder, ``val/ILSVRC2012_val_00000001.JPEG`` ..., labelled by one of:
  ``LOC_val_solution.csv`` (Kaggle's ImageNet Object Localization Challenge), the devkit's
  ``ILSVRC2012_validation_ground_truth.txt`` (ILSVRC2012_IDs, mapped to WordNet ids by the devkit's
  ``meta.mat`` or torchvision's ``meta.bin``), or ``val.txt`` with ``FILE WNID`` or ``FILE INDEX``
  lines (Caffe's file; INDEX counts classes in sorted WordNet-id order);
- Kaggle's download as it unpacks: ``ILSVRC/Data/CLS-LOC/{train,val}`` under ROOT, with
  ``LOC_val_solution.csv`` and ``LOC_synset_mapping.txt`` beside ``ILSVRC/``.

The classes are WordNet ids (``n01440764``) in sorted order: torchvision's and timm's class index
order. Their words (``tench, Tinca tinca``), which let a model whose card has human-readable
names be checked, come from the devkit's ``meta.mat``, ``meta.bin`` or ``LOC_synset_mapping.txt``.
``meta.bin`` is a pickle (``torch.save``): it is read with ``torch.load(weights_only=True)`` only,
which accepts plain containers of strings and nothing that runs code.
"""

import re
from pathlib import Path

from wrn_deploy.errors import UserError

WNID = re.compile(r"n\d{8}")
DEVKIT = "ILSVRC2012_devkit_t12/data"
KAGGLE_IMAGES = "ILSVRC/Data/CLS-LOC"


def image_root(root: Path) -> Path:
    """Where train/ and val/ live: ROOT, or Kaggle's ILSVRC/Data/CLS-LOC under it."""
    kaggle = root / KAGGLE_IMAGES
    return kaggle if kaggle.is_dir() and not (root / "val").is_dir() else root


def _first(root: Path, *names: str) -> Path | None:
    for name in names:
        for where in (root / name, root / DEVKIT / name):
            if where.is_file():
                return where
    return None


# -- what the devkit and torchvision say about the classes --------------------------------------------
def _meta_mat(path: Path) -> tuple:
    """({wnid: words}, {ILSVRC2012_ID: wnid}) of the 1000 leaf synsets in the devkit's meta.mat."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise UserError(f"reading {path} needs scipy (pip install 'wrn-deploy[imagenet]'); or remove it and keep "
                        "meta.bin or LOC_synset_mapping.txt") from None
    try:
        synsets = loadmat(str(path), squeeze_me=True)["synsets"]
        rows = [(int(s["ILSVRC2012_ID"]), str(s["WNID"]), str(s["words"]), int(s["num_children"])) for s in synsets]
    except Exception as e:  # noqa: BLE001 - scipy raises many types for a damaged .mat file
        raise UserError(f"{path} is not the ILSVRC2012 devkit's meta.mat ({type(e).__name__})") from None
    leaves = [(i, w, words) for i, w, words, children in rows if children == 0]
    return {w: _synonyms(words) for _, w, words in leaves}, {i: w for i, w, _ in leaves}


def _meta_bin(path: Path) -> tuple:
    """({wnid: words}, [wnid of each validation image in file order]) from torchvision's meta.bin."""
    import pickle

    import torch

    try:
        wnid_to_words, val_wnids = torch.load(str(path), weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, TypeError, EOFError, OSError) as e:
        why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(f"{path} is not torchvision's ImageNet meta.bin, or holds more than plain lists and strings "
                        f"(refused by torch.load(weights_only=True): {why}); delete it, or keep the devkit's "
                        f"meta.mat in {DEVKIT}/") from None
    if not (isinstance(wnid_to_words, dict) and isinstance(val_wnids, list)
            and all(isinstance(k, str) and isinstance(v, (tuple, list)) for k, v in wnid_to_words.items())
            and all(isinstance(w, str) for w in val_wnids)):
        raise UserError(f"{path} is not torchvision's ImageNet meta.bin (a dict of WordNet ids and a list)")
    return {k: tuple(str(x) for x in v) for k, v in wnid_to_words.items()}, val_wnids


def _synset_mapping(path: Path) -> dict:
    """{wnid: words} from Kaggle's LOC_synset_mapping.txt (``n01440764 tench, Tinca tinca``)."""
    out = {}
    for n, line in enumerate(_lines(path), 1):
        wnid, _, words = line.partition(" ")
        if not WNID.fullmatch(wnid):
            raise UserError(f"{path}, line {n}: expected 'WNID words', got {line[:60]!r}")
        out[wnid] = _synonyms(words)
    return out


def _synonyms(words: str) -> tuple:
    return tuple(w.strip() for w in words.split(",") if w.strip())


def _lines(path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def class_words(root: Path) -> tuple:
    """({wnid: words} or None, where it came from, ILSVRC2012_ID -> wnid or None, meta.bin's
    validation wnids or None). meta.mat is preferred: it is not a pickle."""
    mat, binary, mapping = _first(root, "meta.mat"), _first(root, "meta.bin"), _first(root, "LOC_synset_mapping.txt")
    if mat:
        words, ids = _meta_mat(mat)
        return words, mat, ids, None
    if binary:
        words, val_wnids = _meta_bin(binary)
        return words, binary, None, val_wnids
    if mapping:
        return _synset_mapping(mapping), mapping, None, None
    return None, None, None, None


# -- the flat validation folder ------------------------------------------------------------------------
def flat_images(split_dir: Path) -> list:
    """Image files directly in ``split_dir`` (sorted), when it holds no class folders; else []."""
    from wrn_deploy.data.sources import IMG_EXT

    if any(p.is_dir() for p in split_dir.iterdir()):
        return []
    return sorted(p for p in split_dir.iterdir() if p.suffix.lower() in IMG_EXT)


def _image_number(path: Path) -> int | None:
    m = re.fullmatch(r"ILSVRC2012_val_(\d{8})", path.stem)
    return int(m.group(1)) if m else None


def val_labels(root: Path, files: list, ids: dict | None, meta_val_wnids: list | None, classes: list | None) -> dict:
    """{file name stem: wnid} for the flat validation files (``files``), from the first label file found."""
    solution, truth, txt = (_first(root, "LOC_val_solution.csv"), _first(root, "ILSVRC2012_validation_ground_truth.txt"),
                            _first(root, "val.txt"))
    if solution:
        return _kaggle_solution(solution)
    if truth:
        return _ground_truth(truth, files, ids, meta_val_wnids)
    if txt:
        return _val_txt(txt, classes)
    raise UserError(f"{files[0].parent} holds images but no class folders, and no label file was found: put "
                    f"LOC_val_solution.csv, ILSVRC2012_validation_ground_truth.txt (with the devkit's meta.mat) or "
                    f"val.txt ('FILE WNID' lines) in {root} (see docs/imagenet.md)")


def _kaggle_solution(path: Path) -> dict:
    lines = _lines(path)
    if not lines or not lines[0].lower().startswith("imageid,"):
        raise UserError(f"{path}: expected Kaggle's header 'ImageId,PredictionString'")
    out = {}
    for n, line in enumerate(lines[1:], 2):
        image, _, boxes = line.partition(",")
        wnid = boxes.split(" ", 1)[0]
        if not WNID.fullmatch(wnid):
            raise UserError(f"{path}, line {n}: expected 'ImageId,WNID ...', got {line[:60]!r}")
        out[image] = wnid
    return out


def _ground_truth(path: Path, files: list, ids: dict | None, meta_val_wnids: list | None) -> dict:
    """The devkit's ground truth: line k holds the ILSVRC2012_ID of ILSVRC2012_val_<k>.JPEG."""
    lines = _lines(path)
    if ids is None and meta_val_wnids is None:
        raise UserError(f"{path} gives ILSVRC2012_IDs; mapping them to WordNet ids needs the devkit's meta.mat "
                        f"(in {DEVKIT}/) or torchvision's meta.bin beside it")
    if meta_val_wnids is not None and len(meta_val_wnids) != len(lines):
        raise UserError(f"{path} has {len(lines)} lines but meta.bin lists {len(meta_val_wnids)} validation images")
    out = {}
    for n, line in enumerate(lines, 1):
        if ids is not None:
            if not line.isdigit() or int(line) not in ids:
                raise UserError(f"{path}, line {n}: {line[:20]!r} is not an ILSVRC2012_ID of meta.mat's 1000 classes")
            out[f"ILSVRC2012_val_{n:08d}"] = ids[int(line)]
        else:
            out[f"ILSVRC2012_val_{n:08d}"] = meta_val_wnids[n - 1]
    unnamed = next((f for f in files if _image_number(f) is None), None)
    if unnamed is not None:
        raise UserError(f"{unnamed.name}: the ground-truth file labels images by number, and this file is not named "
                        "ILSVRC2012_val_NNNNNNNN")
    return out


def _val_txt(path: Path, classes: list | None) -> dict:
    out = {}
    for n, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) != 2:
            raise UserError(f"{path}, line {n}: expected 'FILE WNID' or 'FILE INDEX', got {line[:60]!r}")
        name, label = Path(parts[0]).stem, parts[1]
        if WNID.fullmatch(label):
            out[name] = label
        elif label.isdigit():
            if classes is None:
                raise UserError(f"{path} labels images by class index; naming the classes needs train/ class "
                                "folders, meta.mat, meta.bin or LOC_synset_mapping.txt beside it")
            if int(label) >= len(classes):
                raise UserError(f"{path}, line {n}: class index {label} but there are {len(classes)} classes")
            out[name] = classes[int(label)]
        else:
            raise UserError(f"{path}, line {n}: {label[:20]!r} is neither a WordNet id nor a class index")
    return out


def flat_samples(split_dir: Path, files: list, labels: dict, classes: list) -> list:
    """(path, class index) of each file; a file without a label, or a label outside the classes, is
    one error naming it."""
    index = {w: i for i, w in enumerate(classes)}
    samples = []
    for f in files:
        wnid = labels.get(f.stem)
        if wnid is None:
            raise UserError(f"{f} has no label in the label file")
        if wnid not in index:
            raise UserError(f"{f} is labelled {wnid}, which is not one of the {len(classes)} classes "
                            f"({classes[0]} ... {classes[-1]})")
        samples.append((str(f), index[wnid]))
    return samples


# -- the model's classes against the data's -------------------------------------------------------------
def check_wnids(classes: list, where) -> None:
    bad = next((c for c in classes if not WNID.fullmatch(c)), None)
    if bad is not None:
        raise UserError(f"{where}: the class {bad!r} is not a WordNet id (n01440764 ...); ImageNet class folders are "
                        "named by WordNet id (use --data imagefolder for other names)")


def _normal(text: str) -> str:
    return " ".join(text.replace(",", " ").lower().split())


def names_match(name: str, synonyms: tuple) -> bool:
    """Whether a human-readable class name is one of the synset's words. torchvision names two of
    ImageNet's classes by words plus a distinguishing one (``crane bird``, ``maillot tank suit``),
    so the name may also be a word followed by more, or all the words together."""
    name = _normal(name)
    words = [_normal(s) for s in synonyms]
    return name in words or name == _normal(", ".join(synonyms)) or any(name.startswith(w + " ") for w in words)


def classes_differ(wnids: list, model_classes: list, words: dict | None) -> str | None:
    """How the data's classes (sorted WordNet ids) differ from the model's: by id when the model's
    card names WordNet ids, else by the ids' words (when the data has them), else by count only."""
    if len(wnids) != len(model_classes):
        return f"has {len(wnids)} classes; the model has {len(model_classes)} classes"
    if all(WNID.fullmatch(c) for c in model_classes):
        i = next((i for i, (a, b) in enumerate(zip(wnids, model_classes)) if a != b), None)
        return None if i is None else f"names class {i} {wnids[i]!r}; the model calls it {model_classes[i]!r}"
    if words is None:
        return None
    for i, (w, name) in enumerate(zip(wnids, model_classes)):
        synonyms = words.get(w)
        if synonyms is None or not names_match(name, synonyms):
            said = ", ".join(synonyms) if synonyms else "not in the class list"
            return f"has class {i} {w} ({said}); the model calls class {i} {name!r} (labels would shift)"
    return None


# -- loading ---------------------------------------------------------------------------------------------
def _folder_classes(split_dir: Path) -> list:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def load(root: Path, progress: bool, skip_bad: bool) -> tuple:
    """(train split or None, test split, classes, images skipped, {split: digest}, {wnid: words} or
    None). The test split is val/ (or test/): class folders, or flat files with a label file.
    Every image is resized at use, whatever its size."""
    from wrn_deploy.data.sources import find_split_dir, load_files, load_folder

    images = image_root(root)
    words, _, ids, meta_val_wnids = class_words(root)
    train, classes, skipped, digests = None, None, 0, {"train": None}
    if (images / "train").is_dir():
        check_wnids(_folder_classes(images / "train"), images / "train")
        train, classes, skipped, digests["train"] = load_folder(images, True, progress, skip_bad, False, large=True)
    test_dir = find_split_dir(images, False)
    if test_dir is None:
        raise UserError(f"ImageNet not found in {root} (expected val/<wnid>/*.JPEG, or val/ILSVRC2012_val_*.JPEG with a "
                        "label file; see docs/imagenet.md)")
    files = flat_images(test_dir)
    if files:
        known = classes or (sorted(words) if words else None)
        labels = val_labels(root, files, ids, meta_val_wnids, known)
        classes = known or sorted(set(labels.values()))
        check_wnids(classes, test_dir)
        test, _, bad, digests["test"] = load_files(test_dir, flat_samples(test_dir, files, labels, classes), classes,
                                                  progress, skip_bad)
    else:
        test_classes = _folder_classes(test_dir)
        check_wnids(test_classes, test_dir)
        if classes is not None and test_classes != classes:
            differ = sorted(set(test_classes) ^ set(classes))
            raise UserError(f"class folders of train/ and {test_dir.name}/ differ in {images} (first: {differ[0]})")
        test, classes, bad, digests["test"] = load_folder(images, False, progress, skip_bad, False, large=True)
    return train, test, classes, skipped + bad, digests, words
