"""torchvision's wide_resnet50_2, built and randomly initialised by torchvision itself (BatchNorm
statistics randomised, so the export's BatchNorm folding is exercised), saved with torch.save and
imported: wrn-deploy's model gives torchvision's logits, and its data path gives the tensor that
torchvision's own ``weights.transforms()`` gives, on JPEGs of several sizes."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli
from tests.cpp.conftest import classify, cpp_builds, cpp_deps, cpp_exe  # noqa: F401 - fixtures
from tests.export.conftest import randomize_batchnorm
from wrn_deploy.card import read_card
from wrn_deploy.checkpoint import model_from_checkpoint


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """(torchvision model, wrn-deploy checkpoint imported from its torch.save state dict)."""
    import torchvision

    root = tmp_path_factory.mktemp("tv")
    torch.manual_seed(0)
    source = randomize_batchnorm(torchvision.models.wide_resnet50_2())
    torch.save(source.state_dict(), root / "wide_resnet50_2.pth")
    run_cli("import", root / "wide_resnet50_2.pth", "--from", "torchvision", "--weights", "IMAGENET1K_V2", "-o",
            root / "wrn50.safetensors")
    return source, root / "wrn50.safetensors"


@pytest.mark.slow
def test_the_imported_model_gives_torchvision_logits(imported):
    source, ckpt = imported
    model, card = model_from_checkpoint(ckpt)
    assert card.arch == "wrn-50-2" and card.num_classes == 1000 and card.classes[:2] == ("tench", "goldfish")
    x = torch.rand(2, 3, 64, 64)  # the network is fully convolutional: 64 px checks the weights cheaply
    with torch.no_grad():
        ours, theirs = model(x), source(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())
    assert theirs.std() > 0.1  # the BatchNorm statistics make the logits non-trivial


def card_for(weights: str, arch: str = "wrn-50-2", source: str = "torchvision"):
    """The card ``import --from SOURCE --weights WEIGHTS`` writes (without weights to read)."""
    from pathlib import Path

    from wrn_deploy.foreign.convert import ImportOptions, card_facts, make_card

    opts = ImportOptions(source=source, weights=weights)
    return make_card(card_facts(opts, arch, source), arch, 1000, opts, Path("x.pth"), "0" * 64)


@pytest.mark.slow
def test_the_imported_card_takes_torchvision_metadata(imported):
    card = read_card(imported[1])
    check_v2_card(card)
    assert card.training["imported"]["file"] == "wide_resnet50_2.pth" and card.step.name == "import"


def test_the_card_takes_torchvision_metadata():
    check_v2_card(card_for("IMAGENET1K_V2"))
    v1 = card_for("Wide_ResNet50_2_Weights.IMAGENET1K_V1")
    assert (v1.preprocess.resize, v1.training["imported"]["metrics"]["ImageNet-1K"]["acc@1"]) == (256, 78.468)
    assert card_for("IMAGENET1K_V2", "wrn-101-2").training["imported"]["metrics"]["ImageNet-1K"]["acc@1"] == 82.51


def check_v2_card(card):
    from torchvision.models import Wide_ResNet50_2_Weights as W

    t = W.IMAGENET1K_V2.transforms()
    assert card.classes == tuple(W.IMAGENET1K_V2.meta["categories"])
    assert (card.input_size, card.preprocess.resize, card.preprocess.interpolation) == (224, 232, "bilinear")
    assert card.mean == tuple(t.mean) and card.std == tuple(t.std) and card.dataset == {"name": "imagenet"}
    imported_from = card.training["imported"]
    assert imported_from["weights"] == "Wide_ResNet50_2_Weights.IMAGENET1K_V2"
    assert imported_from["metrics"]["ImageNet-1K"]["acc@1"] == 81.602


SIZES = [(500, 375), (375, 500), (256, 256), (1000, 200), (231, 240)]


@pytest.fixture(scope="module")
def jpegs(cifar_dir, tmp_path_factory):
    """Real JPEGs of several sizes (CIFAR-10 test images upscaled, saved at quality 90), one class each."""
    root = tmp_path_factory.mktemp("jpegs")
    sources = sorted((cifar_dir / "test" / "cat").iterdir())
    for i, (size, src) in enumerate(zip(SIZES, sources)):
        folder = root / "test" / f"c{i}"
        folder.mkdir(parents=True)
        Image.open(src).convert("RGB").resize(size, Image.BICUBIC).save(folder / "img.jpg", quality=90)
        (root / "train" / f"c{i}").mkdir(parents=True)
        Image.open(src).convert("RGB").resize(size, Image.BICUBIC).save(root / "train" / f"c{i}" / "img.jpg")
    return root


@pytest.mark.parametrize("weights", ["IMAGENET1K_V1", "IMAGENET1K_V2"])
def test_the_data_path_preprocesses_as_torchvision_does(weights, jpegs):
    """Bit for bit: the same PIL resize (antialiased, torchvision's int truncation of the longer side),
    the same crop, the same uint8 -> float division; wrn-deploy then normalises inside the model, as
    ``(x - mean) / std`` with the card's float32 mean and std, which is torchvision's Normalize."""
    from torchvision.models import Wide_ResNet50_2_Weights as W

    from wrn_deploy.arch.normalize import Normalized
    from wrn_deploy.data.load import Selection
    from wrn_deploy.data.sources import load_folder
    w = W[weights]
    card = card_for(weights)
    split, classes, _, _ = load_folder(jpegs, train=False, progress=False, decode=False)
    images = torch.from_numpy(Selection("imagenet", "test", split, card.input_size, {}, classes, card.preprocess).images())
    normalise = Normalized(torch.nn.Identity(), card.mean, card.std)
    with torch.no_grad():
        ours = normalise(images)
    files = [path for path, _ in split.folder.samples]
    theirs = torch.stack([w.transforms()(Image.open(f).convert("RGB")) for f in files])
    assert [Image.open(f).size for f in files] == SIZES
    assert ours.shape == theirs.shape == (len(SIZES), 3, 224, 224)
    assert torch.equal(ours, theirs), (ours - theirs).abs().max()


@pytest.mark.slow
def test_the_exported_onnx_gives_torchvision_logits(imported, jpegs, tmp_path):
    """The FP32 ONNX that ``export`` writes (BatchNorm folded, normalisation inside) against
    torchvision's model on torchvision's own preprocessing of the same JPEGs."""
    import onnxruntime as ort
    from torchvision.models import Wide_ResNet50_2_Weights as W

    source, ckpt = imported
    run_cli("export", ckpt, "-o", tmp_path / "m.onnx", "--no-verify")
    files = sorted((jpegs / "test").glob("*/*.jpg"))
    t = W.IMAGENET1K_V2.transforms()
    with torch.no_grad():
        theirs = source(torch.stack([t(Image.open(f).convert("RGB")) for f in files])).numpy()
    from wrn_deploy.data.batches import eval_transform

    card = read_card(ckpt)
    x = torch.stack([eval_transform(224, card.preprocess)(Image.open(f).convert("RGB")) for f in files]).numpy()
    ours = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.slow
def test_the_cpp_program_gives_torchvision_logits(imported, jpegs, tmp_path, cpp_exe):  # noqa: F811
    """wrn-classify on the exported ONNX and the JPEG files against torchvision's model on torchvision's
    preprocessing. With IMAGENET1K_V1's preprocessing (resize 256, bilinear): the rule the C++ program
    applies today; it reads the card's preprocess once the C++ side follows card.Preprocess."""
    from torchvision.models import Wide_ResNet50_2_Weights as W

    source, _ = imported
    pth = next(imported[1].parent.glob("*.pth"))
    run_cli("import", pth, "--from", "torchvision", "--weights", "IMAGENET1K_V1", "-o", tmp_path / "v1.safetensors")
    run_cli("export", tmp_path / "v1.safetensors", "-o", tmp_path / "v1.onnx", "--no-verify")
    files = sorted((jpegs / "test").glob("*/*.jpg"))
    t = W.IMAGENET1K_V1.transforms()
    with torch.no_grad():
        theirs = source(torch.stack([t(Image.open(f).convert("RGB")) for f in files])).numpy()
    run = classify(cpp_exe, tmp_path / "v1.onnx", files, "--json")
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(run.logits(), theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
