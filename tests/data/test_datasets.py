import torch

from tests.conftest import run_cli
from wrn_deploy.data import load_dataset
from wrn_deploy.data.synthetic import CLASSES, make_synthetic


def test_synthetic_is_deterministic_and_balanced():
    x1, y1 = make_synthetic(500, 7)
    x2, y2 = make_synthetic(500, 7)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (500, 3, 32, 32) and x1.dtype == torch.uint8
    assert y1.bincount().tolist() == [50] * len(CLASSES)
    assert not torch.equal(make_synthetic(500, 8)[0], x1)


def test_synthetic_classes_are_not_separable_by_mean_colour():
    """A linear classifier on per-image colour statistics stays near chance (10%)."""
    x, y = make_synthetic(6000, 0)
    f = x.float().mean((2, 3))
    f = torch.cat([f, x.float().std((2, 3))], 1)
    f = (f - f.mean(0)) / f.std(0)
    w = torch.zeros(f.shape[1], 10, requires_grad=True)
    b = torch.zeros(10, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=100)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(f[:5000] @ w + b, y[:5000])
        loss.backward()
        return loss

    opt.step(closure)
    acc = ((f[5000:] @ w + b).argmax(1) == y[5000:]).float().mean().item()
    assert acc < 0.3


def test_validation_is_held_out_of_train_with_a_fixed_seed():
    ds = load_dataset("synthetic", progress=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (9000, 1000, 2000)
    assert not set(ds.train.ids) & set(ds.val.ids)
    assert all(i.startswith("synthetic/train/") for i in ds.val.ids)
    again = load_dataset("synthetic", progress=False)
    assert ds.val.ids == again.val.ids and ds.identity == again.identity


def test_image_folder_of_cifar(cifar_dir):
    ds = load_dataset("cifar10", cifar_dir, val_size=500, progress=False)
    assert ds.classes[:3] == ["airplane", "automobile", "bird"]
    assert ds.train.images.shape[1:] == (3, 32, 32) and len(ds.test) == 1000
    assert ds.mean[0] == 0.4914  # the published CIFAR-10 statistics
    assert ds.val.ids[0].startswith("train/")
    assert ds.identity["source"] == "folder"  # the kind only: no folder of this machine in a card


def test_missing_data_names_data_dir(tmp_path):
    typo = run_cli("train", "--data", "cifar10", "--data-dir", tmp_path / "none", "--out", tmp_path / "out",
                   check=False)
    assert typo.returncode == 2 and "does not exist" in typo.stderr and not (tmp_path / "none").exists()
    (tmp_path / "empty").mkdir()
    proc = run_cli("train", "--data", "cifar10", "--data-dir", tmp_path / "empty", "--out",
                   tmp_path / "out", check=False)
    assert proc.returncode == 2
    assert "--data-dir" in proc.stderr and "cifar-10-batches-py" in proc.stderr
    assert "Traceback" not in proc.stderr
