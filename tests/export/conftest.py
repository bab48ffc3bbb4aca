import pytest
import torch

from wrn_deploy.arch import create_model
from wrn_deploy.card import Step, new_card, versions
from wrn_deploy.checkpoint import save_checkpoint
from wrn_deploy.data.synthetic import CLASSES


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


def make_checkpoint(path, arch="wrn-10-2", dropout=0.3, seed=0):
    torch.manual_seed(seed)
    model = randomize_batchnorm(create_model(arch, 10, dropout=dropout), seed)
    card = new_card(arch, CLASSES, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), Step("test", {}, versions()),
                    dropout=dropout, dataset={"name": "synthetic"})
    save_checkpoint(path, model.state_dict(), card)
    return path


def resave(src, dst, tensors: dict):
    """Write ``tensors`` to ``dst`` with the metadata (card) of checkpoint ``src``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    save_file(tensors, str(dst), metadata=meta)
    return dst


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "wrn-10-2.safetensors")
