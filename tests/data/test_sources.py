"""``sources.class_folders`` lists a split's class folders exactly as torchvision's ImageFolder does
(the order fixes every label and the content digest), without importing torch."""

import os

import pytest
from torchvision.datasets import ImageFolder

from wrn_deploy.data.sources import class_folders
from wrn_deploy.errors import UserError


def _tree(root):
    files = ["b/2.png", "b/10.PNG", "b/sub/z/1.jpg", "b/sub/a.JPEG", "b/notes.txt", "b/.hidden.png",
             "a/x.webp", "a/y.tiff", "a/y.gif", "A/upper.bmp", "c d/space.pgm", "é/accent.ppm"]
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_bytes(b"not decoded here")
    (root / "stray.png").write_bytes(b"")                  # beside the classes, not in one
    os.symlink(root / "a" / "x.webp", root / "b" / "link.webp")
    return root


def test_the_same_classes_and_samples_in_the_same_order(tmp_path):
    root = _tree(tmp_path / "train")
    ours, theirs = class_folders(root), ImageFolder(str(root))
    assert ours.classes == theirs.classes == ["A", "a", "b", "c d", "é"]
    assert ours.samples == theirs.samples and ours.targets == theirs.targets and ours.root == theirs.root


def test_a_class_without_images_and_a_split_without_classes_are_one_line(tmp_path):
    root = _tree(tmp_path / "train")
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(UserError, match=r"class folder\(s\) empty of .* hold no image"):
        class_folders(root)
    with pytest.raises(UserError, match="no class folder in"):
        class_folders(tmp_path / "train" / "a")
