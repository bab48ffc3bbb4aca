"""Parameter counts against the paper (Tables 1, 2, 3 and 7), to the 0.1M the paper prints."""

import pytest
import torch

from wrn_deploy.arch import create_model
from wrn_deploy.arch.stats import count_macs, count_params

PAPER = {  # name: (classes, millions of parameters as printed)
    "wrn-40-1": (10, 0.6), "wrn-40-2": (10, 2.2), "wrn-40-4": (10, 8.9), "wrn-40-8": (10, 35.7),
    "wrn-28-10": (10, 36.5), "wrn-28-12": (10, 52.5), "wrn-22-8": (10, 17.2), "wrn-22-10": (10, 26.8),
    "wrn-16-8": (10, 11.0), "wrn-16-10": (10, 17.1), "wrn-50-2": (1000, 68.9),
    # Table 2, block types
    "wrn-40-2-B(1,3,1)": (10, 1.4), "wrn-40-2-B(3,1)": (10, 1.2), "wrn-40-2-B(1,3)": (10, 1.3),
    "wrn-40-2-B(3,1,1)": (10, 1.3), "wrn-28-2": (10, 1.5), "wrn-22-2-B(3,1,3)": (10, 1.1),
    # Table 3, deepening factor l at fixed depth 40 (2.2M each)
    "wrn-40-2-B(3,3,3)": (10, 2.2), "wrn-40-2-B(3,3,3,3)": (10, 2.2),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_parameter_count_matches_paper(name):
    classes, millions = PAPER[name]
    with torch.device("meta"):
        model = create_model(name, num_classes=classes)
    # The paper prints one decimal, sometimes truncated (1.145M is printed 1.1M).
    assert abs(count_params(model) / 1e6 - millions) < 0.06


def test_macs_of_wrn_28_10():
    with torch.device("meta"):
        model = create_model("wrn-28-10")
    assert round(count_macs(model, 32) / 1e9, 2) == 5.24


def test_forward_shapes_and_dropout_option():
    model = create_model("wrn-16-2", num_classes=7, dropout=0.3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in model.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in create_model("wrn-16-2").modules())


def test_projection_reads_preactivated_input():
    """A block that changes shape feeds BN-ReLU(x) to both the conv path and the 1x1 shortcut."""
    model = create_model("wrn-10-2").eval()
    block = model.blocks[1]  # 32 -> 64 channels, stride 2
    x = torch.randn(1, 32, 16, 16)
    pre = torch.relu(block.bns[0](x))
    expected = block.convs[1](torch.relu(block.bns[1](block.convs[0](pre)))) + block.shortcut(pre)
    torch.testing.assert_close(block(x), expected)


def test_wrn_101_2_is_torchvisions_wide_resnet101_2():
    """The zoo's wrn-101-2 is torchvision's wide_resnet101_2, parameter for parameter (126.9M, as
    torchvision's weight metadata records), with the bottleneck's stride on its 3x3 conv."""
    from torchvision.models import Wide_ResNet101_2_Weights, wide_resnet101_2

    with torch.device("meta"):
        ours, theirs = create_model("wrn-101-2", 1000), wide_resnet101_2()
    shapes = {k: v.shape for k, v in ours.state_dict().items()}
    assert shapes == {k: v.shape for k, v in theirs.state_dict().items()}
    assert count_params(ours) == Wide_ResNet101_2_Weights.IMAGENET1K_V2.meta["num_params"] == 126_886_696
    block = ours.layer2[0]
    assert (block.conv1.stride, block.conv2.stride, block.downsample[0].stride) == ((1, 1), (2, 2), (2, 2))
    assert [len(getattr(ours, f"layer{i}")) for i in (1, 2, 3, 4)] == [3, 4, 23, 3]
