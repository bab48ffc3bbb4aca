from wrn_deploy.train.config import TrainConfig


def test_milestones_scale_with_epochs():
    cfg = TrainConfig(arch="wrn-16-1", dataset="synthetic", out="x", epochs=20, recipe_epochs=200,
                      milestones=(60, 120, 160), lr=0.1, gamma=0.2)
    assert cfg.scaled_milestones() == [6, 12, 16]
    assert [round(cfg.lr_at(e), 6) for e in (0, 5, 6, 12, 16, 19)] == [0.1, 0.1, 0.02, 0.004, 0.0008, 0.0008]


def test_paper_schedule_unchanged_at_full_length():
    cfg = TrainConfig(arch="wrn-28-10", dataset="cifar10", out="x", epochs=200, recipe_epochs=200)
    assert cfg.scaled_milestones() == [60, 120, 160]
