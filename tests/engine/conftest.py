import sys

import pytest
import torch

from tests.engine import fake_tensorrt


@pytest.fixture
def fake_trt(monkeypatch):
    """The 11.x stand-in as ``tensorrt``, and a pretend H100 for the manifest's GPU fields."""
    mod = fake_tensorrt.as_module()
    monkeypatch.setitem(sys.modules, "tensorrt", mod)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3 (stand-in)")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    return mod
