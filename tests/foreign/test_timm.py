"""timm's wide_resnet50_2, built and randomly initialised by timm, saved in timm's safetensors
format and imported with its pretrained configuration's preprocessing (timm is a test dependency:
the module is skipped where it is not installed)."""

import pytest
import torch
from PIL import Image

from tests.conftest import run_cli
from tests.export.conftest import randomize_batchnorm
from tests.foreign.test_torchvision import SIZES, card_for, jpegs  # noqa: F401 - the JPEG fixture

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("tag", ["racm_in1k", "tv2_in1k", "tv_in1k"])
def test_the_data_path_preprocesses_as_timm_does(tag, jpegs):  # noqa: F811
    """The card of each pretrained tag against timm's own eval transform (its validation script's
    data config: the test size where one is given), on the same JPEGs."""
    from timm.data import create_transform, resolve_data_config

    from wrn_deploy.arch.normalize import Normalized
    from wrn_deploy.data.load import Selection
    from wrn_deploy.data.sources import load_folder

    card = card_for(tag, source="timm")
    cfg = resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(f"wide_resnet50_2.{tag}").to_dict(),
                              use_test_size=True)
    split, classes, _, _ = load_folder(jpegs, train=False, progress=False, decode=False)
    with torch.no_grad():
        ours = Normalized(torch.nn.Identity(), card.mean, card.std)(
            torch.from_numpy(Selection("imagenet", "test", split, card.input_size, {}, classes, card.preprocess).images()))
    transform = create_transform(**cfg)
    theirs = torch.stack([transform(Image.open(f).convert("RGB")) for f, _ in split.folder.samples])
    assert card.input_size == cfg["input_size"][1] and card.preprocess.interpolation == cfg["interpolation"]
    assert torch.equal(ours, theirs), (ours - theirs).abs().max()


def test_racm_takes_timms_test_size():
    card = card_for("wide_resnet50_2.racm_in1k", source="timm")
    # timm: floor(288 / 0.95) = 303 at the test size 288
    assert (card.input_size, card.preprocess.resize, card.preprocess.interpolation) == (288, 303, "bicubic")
    assert card.training["imported"]["weights"] == "timm/wide_resnet50_2.racm_in1k" and card.num_classes == 1000


@pytest.mark.slow
def test_a_timm_checkpoint_imports_with_timm_logits(tmp_path):
    from safetensors.torch import save_file

    from wrn_deploy.checkpoint import model_from_checkpoint

    torch.manual_seed(1)
    source = randomize_batchnorm(timm.create_model("wide_resnet50_2", pretrained=False), seed=1)
    save_file(source.state_dict(), str(tmp_path / "model.safetensors"))  # timm's hub format
    run_cli("import", tmp_path / "model.safetensors", "--from", "timm", "--weights", "tv2_in1k", "-o",
            tmp_path / "w.safetensors")
    model, card = model_from_checkpoint(tmp_path / "w.safetensors")
    assert card.arch == "wrn-50-2" and (card.input_size, card.preprocess.resize) == (224, 232)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), source(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())
