"""eval on CIFAR-10 images through the CLI (the shared lossless test images, or generated stand-ins
where ../shared is absent)."""

import json
import re

import numpy as np
import pytest
import torch

from tests.conftest import CIFAR10_CLASSES, SHARED, run_cli


@pytest.fixture(scope="module")
def cifar_models(cifar_dir, tmp_path_factory):
    """A WRN-10-1 trained for one epoch on 1,800 shared JPEG training images, exported three ways."""
    root = tmp_path_factory.mktemp("cifar-models")
    run_cli("train", "--arch", "wrn-10-1", "--data", "cifar10", "--data-dir", cifar_dir, "--epochs", "1",
            "--val-size", "600", "--out", root / "run", "--no-progress")
    ckpt = root / "run" / "best.safetensors"
    run_cli("export", ckpt, "-o", root / "m.onnx", "--data", "cifar10", "--data-dir", cifar_dir)
    run_cli("export", ckpt, "-o", root / "m.fp16.onnx", "--fp16", "--data", "cifar10", "--data-dir", cifar_dir)
    run_cli("quantize", root / "m.onnx", "-o", root / "m.int8.onnx", "--data-dir", cifar_dir, "--calib-size", "100",
            "--calib-dir", root / "calib", "--no-progress")
    return root


def _eval(*args, check=False):
    return run_cli("eval", *args, "--no-progress", "--force", check=check)  # reports are rewritten here


def test_fp32_onnx_passes_with_a_full_report(cifar_models, cifar_dir):
    proc = _eval("--onnx", cifar_models / "m.onnx", "--data-dir", cifar_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads((cifar_models / "m.onnx.eval.json").read_text())
    s = rep["stats"]
    assert rep["data"] == {"dataset": "cifar10", "split": "test", "images": 1000, "calibration_overlap": 0,
                           "skipped_unreadable": 0, "classes": CIFAR10_CLASSES}
    assert s["agreement"] == 100.0 and s["max_abs_logit_diff"] < 1e-3 and s["mcnemar_p"] == 1.0
    # One epoch on 1,200 real images learns something; on the generated stand-ins it need not.
    assert (10 if SHARED.is_dir() else 0) < s["ref_top1"] < 100 and s["ref_top5"] >= s["ref_top1"]
    assert (cifar_models / "m.onnx.eval.md").read_text().startswith("# Parity: wrn-10-1 fp32")
    assert "PASSED" in proc.stdout and "McNemar" in proc.stdout


def test_fp16_and_int8_reports_apply_their_gates(cifar_models, cifar_dir):
    for name, gate in (("m.fp16.onnx", "top-1 agreement >= 99%"), ("m.int8.onnx", "top-1 drop")):
        proc = _eval("--onnx", cifar_models / name, "--data-dir", cifar_dir)
        rep = json.loads((cifar_models / f"{name}.eval.json").read_text())
        assert rep["gates"][0]["gate"].startswith(gate)
        assert proc.returncode == (0 if rep["passed"] else 1)
        assert rep["passed"] == all(g["passed"] for g in rep["gates"])


def test_int8_is_refused_on_its_own_calibration_images(cifar_models, cifar_dir):
    proc = _eval("--onnx", cifar_models / "m.int8.onnx", "--data-dir", cifar_dir, "--split", "val")
    assert proc.returncode == 2 and "calibrated this model" in proc.stderr
    ok = _eval("--onnx", cifar_models / "m.int8.onnx", "--data-dir", cifar_dir, "--split", "val",
               "--allow-calibration-overlap")
    assert json.loads((cifar_models / "m.int8.onnx.eval.json").read_text())["data"]["calibration_overlap"] == 100
    assert ok.returncode in (0, 1)


def test_a_broken_candidate_fails_the_gate_with_exit_1(cifar_models, cifar_dir, tmp_path):
    from safetensors.torch import load_file

    from tests.export.conftest import resave

    ckpt = cifar_models / "run" / "best.safetensors"
    tensors = load_file(ckpt)
    g = torch.Generator().manual_seed(0)
    for k, v in tensors.items():
        if k.startswith("model.") and v.is_floating_point() and k.endswith("weight"):
            tensors[k] = v + 0.5 * v.std() * torch.randn(v.shape, generator=g)
    broken = resave(ckpt, tmp_path / "broken.safetensors", tensors)
    proc = _eval("--checkpoint", broken, "--reference", ckpt, "--data-dir", cifar_dir, "--report", tmp_path / "r")
    assert proc.returncode == 1 and "FAILED" in proc.stdout
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["stats"]["agreement"] < 99.9 and not rep["passed"]


@pytest.mark.parametrize("args,fragment", [
    ([], "give a candidate"),
    (["--onnx", "x.onnx", "--checkpoint", "y.safetensors", "--report", "r"], "--report names one"),
    (["--checkpoint", "nope.safetensors"], "does not exist"),
    (["--onnx", "x.txt"], "unknown artifact type"),
])
def test_bad_eval_input(args, fragment, tmp_path):
    proc = _eval(*args)
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


def test_dataset_with_other_class_count_is_refused(cifar_models, tmp_path):
    proc = _eval("--onnx", cifar_models / "m.onnx", "--data", "svhn", "--data-dir", tmp_path)
    assert proc.returncode == 2  # svhn is absent here: a one-line data error
    folder = tmp_path / "three"
    from PIL import Image

    for split in ("train", "test"):
        for c in "abc":
            (folder / split / c).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (32, 32)).save(folder / split / c / f"{i}.png")
    proc = _eval("--onnx", cifar_models / "m.onnx", "--data", "imagefolder", "--data-dir", folder)
    assert proc.returncode == 2 and "3 classes" in proc.stderr


def test_several_candidates_share_one_reference_run(cifar_models, cifar_dir):
    names = ("m.onnx", "m.fp16.onnx", "m.int8.onnx")
    args = [a for n in names for a in ("--onnx", cifar_models / n)]
    proc = _eval(*args, "--data-dir", cifar_dir, "--limit", "200")
    reps = [json.loads((cifar_models / f"{n}.eval.json").read_text()) for n in names]
    assert proc.returncode == (0 if all(r["passed"] for r in reps) else 1)
    assert proc.stdout.count("vs PyTorch FP32") == 3
    assert [r["candidate"]["precision"] for r in reps] == ["fp32", "fp16", "int8+fp16"]
    # One reference run: every report carries the very same reference figures.
    assert len({(r["stats"]["ref_top1"], r["stats"]["ref_top5"], r["reference"]["seconds"]) for r in reps}) == 1


def _folder_of(images, labels, classes, root):
    """Images saved losslessly as an ImageFolder test split (train/ gets a copy so the set loads)."""
    from PIL import Image

    for i, (x, y) in enumerate(zip(images, labels)):
        for split in ("train", "test"):
            (root / split / classes[int(y)]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(x).transpose(1, 2, 0)).save(root / split / classes[int(y)] / f"img{i}.png")
    for c in classes:  # every class needs an image; a grey square calibrated nothing
        for split in ("train", "test"):
            if not (root / split / c).is_dir():
                (root / split / c).mkdir(parents=True)
                Image.new("RGB", (32, 32), (128, 128, 128)).save(root / split / c / "filler.png")
    return root


def test_other_data_with_the_same_classes_needs_a_flag(cifar_models, cifar_dir, tmp_path):
    from wrn_deploy.data import load_dataset

    ds = load_dataset("cifar10", cifar_dir, val_size=600, progress=False)
    root = _folder_of(ds.test.images[:50], ds.test.labels[:50], ds.classes, tmp_path / "other")
    args = ("--onnx", cifar_models / "m.onnx", "--data", "imagefolder", "--data-dir", root, "--report", tmp_path / "r")
    proc = _eval(*args)
    assert proc.returncode == 2 and "--allow-other-data" in proc.stderr and "cifar10" in proc.stderr
    assert _eval(*args, "--allow-other-data").returncode == 0


def test_calibration_images_are_recognised_by_content(cifar_models, cifar_dir, tmp_path):
    """The INT8 model's own calibration images, copied under new names into another folder's test
    split, are still its calibration images."""
    from wrn_deploy.card import read_card
    from wrn_deploy.data import for_card

    card = read_card(cifar_models / "m.int8.onnx")
    val = for_card(card, "val", data_dir=cifar_dir)
    calib = set(card.quantization["calibration_ids"])
    picked = [i for i, k in enumerate(val.ids) if k in calib][:20]
    root = _folder_of(val.part.images[picked], val.labels[picked], list(card.classes), tmp_path / "copies")
    args = ("--onnx", cifar_models / "m.int8.onnx", "--data", "imagefolder", "--data-dir", root,
            "--allow-other-data", "--report", tmp_path / "r")
    proc = _eval(*args)
    assert proc.returncode == 2 and re.search(r"20 of the \d+ evaluation images calibrated this model", proc.stderr)
    proc = _eval(*args, "--allow-calibration-overlap")
    assert "calibration images scored (allowed)" in proc.stdout
    assert "calibration images scored (allowed)" in (tmp_path / "r.md").read_text()
    assert json.loads((tmp_path / "r.json").read_text())["data"]["calibration_overlap"] == 20


@pytest.mark.slow  # 15-25 s here: two evals through OpenVINO; the default tier keeps the unit test below
def test_openvino_rows_apply_the_gate_of_what_ran(cifar_models, cifar_dir):
    """OpenVINO runs the same ONNX files: FP32 under the FP32 gate, the bf16 hint under BF16's where
    the CPU computes BF16 (elsewhere it ran f32 and the report says so), INT8 under INT8's. Reports
    go beside ONNX Runtime's, and name the CPU's instruction set."""
    pytest.importorskip("openvino", reason="OpenVINO not installed (the 'openvino' extra)")
    from wrn_deploy.cpuinfo import instruction_set, native_bf16

    for hint in ("f32", "bf16"):
        proc = _eval("--onnx", cifar_models / "m.onnx", "--onnx", cifar_models / "m.int8.onnx", "--runtime",
                     "openvino", "--precision-hint", hint, "--data-dir", cifar_dir, "--images", "200")
        fp32, int8 = (json.loads((cifar_models / f"{n}.openvino-{hint}.eval.json").read_text())
                      for n in ("m.onnx", "m.int8.onnx"))
        ran = "bf16" if hint == "bf16" and native_bf16() else "f32"
        assert fp32["candidate"]["runner"] == f"openvino-cpu-{hint}"
        assert fp32["candidate"]["precision_hint"] == {"requested": hint, "ran": ran}
        assert fp32["candidate"]["computed_in"] == ("bf16" if ran == "bf16" else "fp32")
        assert fp32["gates"][0]["gate"] == ("top-1 agreement >= 98%" if ran == "bf16" else "top-1 agreement >= 99.9%")
        assert fp32["passed"] and fp32["stats"]["agreement"] >= 99.0
        assert int8["candidate"]["computed_in"] == "int8" and int8["gates"][0]["gate"].startswith("top-1 drop")
        assert fp32["machine"]["instruction_set"] == instruction_set() and "openvino" in fp32["versions"]
        assert proc.returncode == (0 if fp32["passed"] and int8["passed"] else 1), proc.stdout + proc.stderr
        assert re.search(rf"OpenVINO computed float layers in +{ran}", proc.stdout) and instruction_set() in proc.stdout
    bad = _eval("--checkpoint", cifar_models / "run" / "best.safetensors", "--runtime", "openvino")
    assert bad.returncode == 2 and "--onnx candidates only" in bad.stderr
    bad = _eval("--onnx", cifar_models / "m.onnx", "--precision-hint", "bf16")
    assert bad.returncode == 2 and "applies to --runtime openvino" in bad.stderr


def test_the_gate_follows_what_openvino_computed_in():
    """Unit form of the test above (no model): a float model that OpenVINO ran in BF16 is gated as
    BF16; one it ran in f32 (no BF16 instructions) as FP32; INT8 stays INT8 whatever the hint."""
    from types import SimpleNamespace

    from wrn_deploy.card import Precision
    from wrn_deploy.parity.evaluate import Candidate, runtime_precision

    def cand(precision, asked, ran):
        runner = SimpleNamespace(precision=asked, ran_precision=ran)
        return Candidate("m.onnx", SimpleNamespace(precision=Precision.parse(precision)), runner)

    assert cand("fp32", "bf16", "bf16").compute == "bf16" and cand("fp16", "bf16", "bf16").compute == "bf16"
    assert cand("fp32", "bf16", "f32").compute == "fp32" and cand("int8+fp32", "bf16", "bf16").compute == "int8"
    assert runtime_precision(cand("fp32", "bf16", "f32").runner) == {"precision_hint": {"requested": "bf16",
                                                                                        "ran": "f32"}}
    assert runtime_precision(SimpleNamespace()) == {}
