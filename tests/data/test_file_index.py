"""Data on demand: a folder is an index (paths, labels, file digests cached by path, size and time)
until a step uses an image; its identity needs no decoding and still follows every change."""

import os

import numpy as np
import pytest
from PIL import Image

from wrn_deploy.data import file_index, load_dataset, sources
from wrn_deploy.data.load import Selection


@pytest.fixture(autouse=True)
def own_index(tmp_path, monkeypatch):
    monkeypatch.setenv("WRN_DEPLOY_FILE_INDEX", str(tmp_path / "index.sqlite"))


def _folder(root, per_class=6, size=32):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b", "c"):
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")
    return root


def _count_reads(monkeypatch):
    reads = []
    real = file_index._read
    monkeypatch.setattr(file_index, "_read", lambda p: reads.append(p) or real(p))
    return reads


def test_a_folder_is_read_once_then_only_stat(tmp_path, monkeypatch):
    root = _folder(tmp_path / "d")
    reads = _count_reads(monkeypatch)
    first = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False)
    assert len(reads) == 36
    again = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False)
    assert len(reads) == 36 and again.identity == first.identity


def test_identity_without_decoding_equals_the_decoded_ones(tmp_path):
    root = _folder(tmp_path / "d")
    lazy = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False)
    full = load_dataset("imagefolder", root, val_size=3, progress=False)
    assert isinstance(lazy.train, sources.FolderSplit) and isinstance(full.train, sources.TensorSplit)
    for key in ("train_sha256", "test_sha256", "train", "val", "test"):
        assert lazy.identity[key] == full.identity[key], key
    assert lazy.val.ids == full.val.ids
    assert lazy.val.image_digests() == full.val.image_digests()  # pixel digests, as for images in memory


def test_a_changed_or_renamed_image_changes_the_identity(tmp_path):
    root = _folder(tmp_path / "d")
    before = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity["train_sha256"]
    image = root / "train" / "b" / "2.png"
    pixels = np.asarray(Image.open(image)).copy()
    pixels[0, 0] ^= 1
    stat = image.stat()
    Image.fromarray(pixels).save(image)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    changed = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity["train_sha256"]
    assert changed != before
    image.rename(root / "train" / "b" / "9.png")
    renamed = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity["train_sha256"]
    assert renamed not in (before, changed)


def test_steps_decode_only_the_images_they_use(tmp_path, monkeypatch):
    root = _folder(tmp_path / "d", per_class=20)
    ds = load_dataset("imagefolder", root, val_size=10, progress=False, decode=False)
    decoded = []
    real = sources.decode_rgb
    monkeypatch.setattr(sources, "decode_rgb", lambda p: decoded.append(p) or real(p))
    chosen = Selection("imagefolder", "val", ds.val, 32, ds.identity, ds.classes).first(4)
    x = chosen.images()
    assert x.shape == (4, 3, 32, 32) and len(decoded) == 4
    assert sorted(decoded) == sorted(str(root / i) for i in chosen.ids)
    # The same pixels as the decoded dataset holds for those images.
    full = load_dataset("imagefolder", root, val_size=10, progress=False)
    assert np.array_equal(np.rint(x * 255).astype(np.uint8), full.val.images[:4])


def test_unreadable_headers_are_found_by_the_index(tmp_path):
    root = _folder(tmp_path / "d")
    (root / "train" / "a" / "note.png").write_text("not an image\n")
    with pytest.raises(sources.UserError, match="note.png"):
        load_dataset("imagefolder", root, val_size=3, progress=False, decode=False)
    ds = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False, skip_bad=True)
    assert ds.identity["skipped_unreadable"] == 1 and ds.identity["train"] + ds.identity["val"] == 18


def test_without_a_writable_cache_every_file_is_read(tmp_path, monkeypatch):
    root = _folder(tmp_path / "d")
    (tmp_path / "ro").mkdir()
    monkeypatch.setenv("WRN_DEPLOY_FILE_INDEX", str(tmp_path / "ro" / "no" / "index.sqlite"))
    os.chmod(tmp_path / "ro", 0o500)
    try:
        reads = _count_reads(monkeypatch)
        a = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity
        b = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity
    finally:
        os.chmod(tmp_path / "ro", 0o700)
    assert a == b
    if os.geteuid() != 0:  # root writes through the read-only folder
        assert len(reads) == 72


def test_a_card_with_the_older_pixel_digest_gets_its_own_message(tmp_path):
    from types import SimpleNamespace

    from wrn_deploy.data.load import check_identity

    root = _folder(tmp_path / "d")
    ds = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False)
    old = {k: v for k, v in ds.identity.items() if k != "digest"} | {"train_sha256": "0" * 64}
    card = SimpleNamespace(classes=ds.classes, dataset=old)
    with pytest.raises(sources.UserError, match="older digest .* --allow-other-data"):
        check_identity(card, ds, "val", False)
    check_identity(card, ds, "val", True)
    check_identity(SimpleNamespace(classes=ds.classes, dataset=ds.identity), ds, "val", False)


def test_the_identity_does_not_depend_on_how_the_folder_is_spelled(tmp_path, monkeypatch):
    root = _folder(tmp_path / "d")
    want = load_dataset("imagefolder", root, val_size=3, progress=False).identity
    monkeypatch.chdir(root)
    for spelling in (".", "../d", str(root) + "/"):
        for decode in (True, False):
            got = load_dataset("imagefolder", spelling, val_size=3, progress=False, decode=decode).identity
            assert (got["train_sha256"], got["test_sha256"]) == (want["train_sha256"], want["test_sha256"]), spelling


def test_skip_bad_images_gives_one_identity_with_and_without_decoding(tmp_path):
    root = _folder(tmp_path / "d")
    broken = root / "test" / "a" / "0.png"
    broken.write_bytes(broken.read_bytes()[:200])  # the header reads, the pixels do not
    full = load_dataset("imagefolder", root, val_size=3, progress=False, skip_bad=True)
    lazy = load_dataset("imagefolder", root, val_size=3, progress=False, skip_bad=True, decode=False)
    assert full.identity == lazy.identity and full.identity["skipped_unreadable"] == 1
    assert len(lazy.test) == 17 and Selection("imagefolder", "test", lazy.test, 32, {}, []).images().shape[0] == 17


def test_a_moved_file_of_the_same_size_and_time_is_read_again(tmp_path):
    root = _folder(tmp_path / "d")
    before = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity["train_sha256"]
    a, b = root / "train" / "a" / "1.png", root / "train" / "b" / "1.png"
    assert a.stat().st_size == b.stat().st_size  # same size; mv keeps the times: only the inode and ctime move
    tmp = root / "swap.png"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    assert load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity["train_sha256"] != before


def test_file_names_cannot_imitate_other_entries():
    from wrn_deploy.data.sources import files_digest

    a, b = "1" * 64, "2" * 64
    assert files_digest(["t/a.png", "t/b.png"], [a, b]) != files_digest([f"t/a.png\t{a}\nt/b.png"], [b])


def test_malformed_cache_rows_count_as_missing(tmp_path):
    import sqlite3

    root = _folder(tmp_path / "d")
    want = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        db.execute("UPDATE files_v2 SET width = 'x'")
        db.execute("UPDATE files_v2 SET sha256 = 'not hex' WHERE path LIKE '%/a/%'")
    assert load_dataset("imagefolder", root, val_size=3, progress=False, decode=False).identity == want


def test_a_dangling_link_is_an_unreadable_image(tmp_path):
    root = _folder(tmp_path / "d")
    (root / "test" / "a" / "gone.png").symlink_to(root / "test" / "a" / "missing.png")
    with pytest.raises(sources.UserError, match="gone.png"):
        load_dataset("imagefolder", root, val_size=3, progress=False, decode=False)
    ds = load_dataset("imagefolder", root, val_size=3, progress=False, decode=False, skip_bad=True)
    assert ds.identity["skipped_unreadable"] == 1


def test_a_file_name_that_is_not_utf8_is_one_clear_error(tmp_path):
    root = _folder(tmp_path / "d")
    name = os.fsdecode(b"\xff\xfe.png")
    (root / "test" / "a" / "0.png").rename(root / "test" / "a" / name)
    with pytest.raises(sources.UserError, match="not valid UTF-8"):
        load_dataset("imagefolder", root, val_size=3, progress=False, decode=False)
