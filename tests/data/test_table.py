"""The dataset table's held-out sizes: what training holds out and the pipeline checks --calib-size against."""

from wrn_deploy.data import load
from wrn_deploy.data.table import held_out_size


def test_held_out_sizes():
    assert held_out_size("synthetic") == 1000
    assert held_out_size("cifar10") == held_out_size("cifar100") == held_out_size("svhn") == 5000
    assert held_out_size("imagefolder") is None            # a folder's size is known once it is read
    assert held_out_size("imagefolder", 300) == 30 and held_out_size("imagefolder", 5) == 1


def test_training_holds_out_what_the_table_says():
    ds = load.load_dataset("synthetic", progress=False)
    assert ds.identity["val"] == held_out_size("synthetic")
