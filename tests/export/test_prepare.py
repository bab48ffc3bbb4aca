"""The prepared (dropout-free, BN-folded) model computes what the eval-mode original computes."""

import pytest
import torch

from tests.export.conftest import randomize_batchnorm
from wrn_deploy.arch import create_model
from wrn_deploy.export.prepare import ChannelAffine, prepare_for_export


@pytest.mark.parametrize("arch,folded,kept", [
    ("wrn-10-1", 3, 4),            # k=1: the first block is an identity block, so the stem cannot fold
    ("wrn-10-2", 4, 3),            # k=2: the first block projects, so the stem folds into its BN
    ("wrn-16-4", 7, 6),
    ("wrn-22-2-B(3,1,3)", 19, 9),
    ("wrn-16-2-b131", 13, 6),
    ("wrn-16-2-b3", 1, 12),        # l = 1: one conv per block (4 per group), no conv->BN inside blocks
])
def test_prepared_cifar_wrn_equals_original(arch, folded, kept):
    model = randomize_batchnorm(create_model(arch, 10, dropout=0.3))
    prepared, report = prepare_for_export(model)
    assert len(report.folded) == folded and len(report.kept) == kept
    mods = list(prepared.modules())
    assert not any(isinstance(m, (torch.nn.Dropout, torch.nn.BatchNorm2d, torch.nn.Identity)) for m in mods)
    assert sum(isinstance(m, ChannelAffine) for m in mods) == kept
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        ref, got = model(x), prepared(x)
    scale = ref.abs().max()
    assert (ref - got).abs().max() / scale < 1e-5
    assert torch.equal(ref.argmax(1), got.argmax(1))


def test_prepared_wrn_50_2_folds_every_batchnorm():
    model = randomize_batchnorm(create_model("wrn-50-2", 1000))
    prepared, report = prepare_for_export(model)
    assert len(report.folded) == 53 and not report.kept and not report.dropout_removed
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        ref, got = model(x), prepared(x)
    assert (ref - got).abs().max() / ref.abs().max() < 1e-5


def test_the_kept_batchnorms_are_the_residual_stream_ones():
    _, report = prepare_for_export(randomize_batchnorm(create_model("wrn-16-2", 10)))
    kept = dict(report.kept)
    assert "bn" in kept and "residual stream" in kept["bn"]            # the final BN
    assert all(name.endswith("bns.0") or name == "bn" for name in kept)
    assert ("stem", "blocks.0.bns.0") in report.folded


def test_original_model_is_not_modified():
    model = randomize_batchnorm(create_model("wrn-10-2", 10, dropout=0.3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_for_export(model)
    assert any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
