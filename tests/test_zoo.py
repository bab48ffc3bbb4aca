from wrn_deploy.arch import parse_arch
from wrn_deploy.zoo import find_recipe, load_zoo


def test_every_recipe_names_a_valid_arch_and_a_sane_schedule():
    zoo = load_zoo()
    assert len(zoo) >= 8
    for e in zoo:
        parse_arch(e.arch)
        assert all(0 < m < e.recipe.epochs for m in e.recipe.milestones)
        assert 0 < e.recipe.lr <= 0.1 and e.recipe.momentum == 0.9 and e.recipe.nesterov


def test_cifar_and_svhn_recipes_follow_the_paper():
    c = find_recipe("wrn-28-10", "cifar10").recipe
    assert (c.lr, c.milestones, c.gamma, c.epochs, c.dropout, c.weight_decay) == \
        (0.1, (60, 120, 160), 0.2, 200, 0.3, 5e-4)
    s = find_recipe("wrn-16-8", "svhn").recipe
    assert (s.lr, s.milestones, s.gamma, s.epochs, s.dropout, s.augment) == \
        (0.01, (80, 120), 0.1, 160, 0.4, "none")


def test_unknown_arch_borrows_its_dataset_family_recipe():
    assert find_recipe("wrn-10-1", "cifar100").dataset == "cifar10"
    assert find_recipe("wrn-10-1", "synthetic").name == "wrn-16-1-synthetic"
