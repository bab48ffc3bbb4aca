"""The ImageNet path end to end on real images: WRN-50-2 at 224 px, trained briefly on shared CIFAR-10
images laid out as an ImageNet-style folder (upscaled to 96x80, so the resize-to-256/224 and centre
crop run; class folders named by WordNet-id-shaped names), then the whole pipeline from its
checkpoint; and the pipeline from a checkpoint that was not trained here (named like torchvision's
weights) on torchvision's ImageNet layout. The first takes minutes on a CPU: marked slow."""

import json

import pytest

from tests.conftest import run_cli
from tests.cpp.conftest import classify, cpp_builds, cpp_deps, cpp_exe  # noqa: F401 - fixtures
from tests.pipeline.conftest import report, statuses

PER_CLASS = {"train": 12, "val": 5}  # 120 training images (60 held out), 50 test images


@pytest.fixture(scope="module")
def imagenet_like(cifar_dir, tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet-like")
    for split, src in (("train", "train"), ("val", "test")):
        for k, cls_dir in enumerate(sorted((cifar_dir / src).iterdir())):
            dst = root / split / f"n{k:08d}"  # --data imagenet: class folders are WordNet ids
            dst.mkdir(parents=True)
            for f in sorted(cls_dir.iterdir())[:PER_CLASS[split]]:
                Image.open(f).convert("RGB").resize((96, 80), Image.BICUBIC).save(dst / f"{f.stem}.png")
    return root


@pytest.mark.slow
def test_wrn_50_2_at_224_px_through_the_whole_pipeline(imagenet_like, tmp_path, cpp_exe):  # noqa: F811
    run = tmp_path / "train"
    run_cli("train", "--arch", "wrn-50-2", "--data", "imagenet", "--data-dir", imagenet_like, "--epochs", "1",
            "--batch-size", "16", "--val-size", "60", "--out", run, "--no-progress")
    out = tmp_path / "pipeline"
    proc = run_cli("pipeline", "--checkpoint", run / "best.safetensors", "--data-dir", imagenet_like,
                   "--eval-images", "40", "--calib-size", "16", "--max-int8-drop", "5", "--no-bench", "--no-triton",
                   "--no-progress", "-o", out, check=False)
    st = statuses(proc.stdout)
    assert {s: v for s, v in st.items() if v not in ("done", "skipped", "blocked")} == {}, proc.stdout + proc.stderr
    rep = report(out)
    assert rep["model"]["arch"] == "wrn-50-2" and rep["model"]["input_size"] == 224
    assert rep["data"]["images"] == 40 and rep["data"]["dataset"] == "imagenet"
    rows = {r["artifact"]: r for r in rep["rows"]}
    assert rows["fp32"]["stats"]["agreement"] >= 99.9 and rows["fp32"]["passed"]
    for name in ("fp16", "int8", "int8-cpu"):
        assert rows[name]["status"] == "done" and "stats" in rows[name]
    verification = json.loads((out / "model.report.json").read_text())["verification"]
    assert verification["data"] == "imagenet test"  # the export was verified on the 224-px test images
    # The C++ program classifies the same image files as the pipeline's ONNX Runtime run.
    import numpy as np

    from wrn_deploy.card import read_card
    from wrn_deploy.data import for_card
    from wrn_deploy.runners import runner_for

    files = [f for d in sorted((imagenet_like / "val").iterdir()) for f in sorted(d.iterdir())][:40]
    chosen = for_card(read_card(out / "model.onnx"), "test", data_dir=imagenet_like).first(40)
    with runner_for(out / "model.onnx") as r:
        python = r.infer_all(chosen.images(), 8)
    cpp = classify(cpp_exe, out / "model.onnx", files, "--json")
    assert cpp.returncode == 0, cpp.stderr
    assert np.abs(cpp.logits() - python).max() < 1e-4
    assert (cpp.logits().argmax(1) == python.argmax(1)).all()


def test_pipeline_from_a_foreign_checkpoint_on_torchvisions_layout(cifar_dir, tmp_path):  # ~10 s: not slow
    """A 64-pixel WRN-10-1 whose card names torchvision's categories (as an imported one does), not
    trained here, through the pipeline on torchvision's ImageNet layout (class folders, meta.bin):
    the names are checked against meta.bin's words, calibration comes from train/."""
    import torch

    from tests.data.imagenet_like import TORCHVISION_NAMES, make_layouts
    from wrn_deploy.arch import create_model
    from wrn_deploy.card import Step, new_card
    from wrn_deploy.checkpoint import save_checkpoint

    root = make_layouts(tmp_path / "imagenet", cifar_dir)["torchvision"]
    torch.manual_seed(0)
    card = new_card("wrn-10-1", TORCHVISION_NAMES, 64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), Step("test"),
                    dataset={"name": "imagenet", "val_size": 24, "split_seed": 0})
    save_checkpoint(tmp_path / "m.safetensors", create_model("wrn-10-1", 4, dropout=0.0).state_dict(), card)
    out = tmp_path / "pipeline"
    proc = run_cli("pipeline", "--checkpoint", tmp_path / "m.safetensors", "--data-dir", root, "--calib-size", "16",
                   "--max-int8-drop", "50", "--min-int8-agreement", "0", "--no-bench", "--no-triton", "--no-progress",
                   "-o", out, check=False)
    st = statuses(proc.stdout)
    assert {s: v for s, v in st.items() if v not in ("done", "skipped", "blocked")} == {}, proc.stdout + proc.stderr
    assert st["quantize-int8"] == "done" and st["eval-int8"] == "done"
    rep = report(out)
    assert rep["data"]["dataset"] == "imagenet" and rep["data"]["images"] == 12
    # the checkpoint lies outside the output folder: the report names it from there, not by a machine path
    assert rep["model"]["checkpoint"] == "../m.safetensors"
    assert str(tmp_path) not in (out / "report.json").read_text() + (out / "report.md").read_text()
