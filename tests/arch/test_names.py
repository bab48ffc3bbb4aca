import pytest

from wrn_deploy.arch import parse_arch
from wrn_deploy.errors import UserError


@pytest.mark.parametrize("name,depth,width,block,per_group", [
    ("wrn-28-10", 28, 10, (3, 3), 4),
    ("WRN-40-4", 40, 4, (3, 3), 6),
    ("wrn-40-2-B(1,3,1)", 40, 2, (1, 3, 1), 6),
    ("wrn-40-2-b131", 40, 2, (1, 3, 1), 6),
    ("wrn-22-2-B(3,1,3)", 22, 2, (3, 1, 3), 3),
    ("wrn-40-2-b333", 40, 2, (3, 3, 3), 4),    # deepening factor l = 3
    ("wrn-40-2-B(3)", 40, 2, (3,), 12),        # l = 1
])
def test_valid_names(name, depth, width, block, per_group):
    spec = parse_arch(name)
    assert (spec.depth, spec.width, spec.block, spec.blocks_per_group) == (depth, width, block, per_group)


def test_both_spellings_name_the_same_model():
    assert parse_arch("wrn-40-2-b131") == parse_arch("wrn-40-2-B(1,3,1)")
    assert parse_arch("wrn-40-2-b131").name == "wrn-40-2-B(1,3,1)"


def test_wrn_50_2_is_imagenet():
    assert parse_arch("wrn-50-2").imagenet


@pytest.mark.parametrize("name,fragment", [
    ("wrn-27-10", "6"),           # not 6N+4
    ("wrn-28-0", "k must be >= 1"),
    ("wrn-28-10-b55", "unknown block type"),
    ("resnet-50", "unknown architecture"),
    ("wrn-40-2-b333-x", "unknown architecture"),
    ("wrn-4-1", "depth"),
])
def test_invalid_names_list_the_valid_forms(name, fragment):
    with pytest.raises(UserError) as e:
        parse_arch(name)
    msg = e.value.format_message()
    assert fragment in msg and "valid forms" in msg and "\n" not in msg
