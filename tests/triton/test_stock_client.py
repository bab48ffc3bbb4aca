"""A raw-pixel repository answers a stock-style Triton image client correctly: the client
(stock_image_client.py, tritonclient's documented API only, no wrn-deploy code) sends each image's
bytes as they are, over HTTP and gRPC, and reads the top class through Triton's classification
extension; its answers equal the local runner's top-1 on the float export, image for image."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from wrn_deploy.triton.server import find_tritonserver, served_repository

pytestmark = pytest.mark.skipif(find_tritonserver() is None, reason="needs a tritonserver (the 'serve' extra)")
CLIENT = Path(__file__).with_name("stock_image_client.py")
IMAGES = 48


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A WRN-10-1 (random weights, real BatchNorm statistics): its float and raw-pixel exports and a
    Python-backend repository of the raw-pixel one."""
    from tests.export.conftest import make_checkpoint

    root = tmp_path_factory.mktemp("stock")
    ckpt = make_checkpoint(root / "c.safetensors", arch="wrn-10-1", dropout=0.0)
    run_cli("export", ckpt, "-o", root / "float.onnx", "--no-verify")
    run_cli("export", ckpt, "-o", root / "raw.onnx", "--raw-pixels", "--no-verify")
    run_cli("triton", root / "raw.onnx", "-o", root / "repo", "--name", "wrn", "--backend", "python",
            "--max-batch", "8", "--no-check-load")
    return root


def _files(cifar_dir) -> list:
    files = sorted((cifar_dir / "test").rglob("*.png"), key=lambda p: (int(p.stem), p.parent.name))
    return [str(p) for p in files[:IMAGES]]


def test_the_raw_pixel_card_and_config_say_what_clients_send(made):
    from wrn_deploy.card import read_card

    spec = read_card(made / "raw.onnx").input
    assert (spec.dtype, tuple(spec.value_range), spec.layout) == ("uint8", (0, 255), "NCHW")
    config = (made / "repo" / "wrn" / "config.pbtxt").read_text()
    assert "data_type: TYPE_UINT8" in config and "format: FORMAT_NCHW" in config
    assert 'label_filename: "labels.txt"' in config


def test_a_stock_client_sending_raw_pixels_gets_the_local_runners_answers(made, cifar_dir):
    from PIL import Image

    assert "wrn_deploy" not in CLIENT.read_text()  # the client is Triton's API only

    from wrn_deploy.card import read_card
    from wrn_deploy.runners.ort_runner import OrtRunner

    files = _files(cifar_dir)
    floats = np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files]) / 255.0
    import torch

    with OrtRunner(made / "float.onnx", threads=1) as r:
        local = r.infer(torch.from_numpy(floats.astype(np.float32))).argmax(1)
    assert len(set(local.tolist())) > 1  # a model that answers one class for everything proves nothing
    classes = read_card(made / "raw.onnx").classes
    with served_repository(made / "repo", log=made / "server.log") as server:
        for protocol, url in (("http", server.http), ("grpc", server.grpc)):
            proc = subprocess.run([sys.executable, str(CLIENT), "-m", "wrn", "-u", url, "-i", protocol, "-b", "8",
                                   *files], check=False, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            rows = [line.split("\t") for line in proc.stdout.splitlines()]
            assert [r[0] for r in rows] == files
            assert [int(r[1]) for r in rows] == local.tolist(), protocol
            assert [r[2] for r in rows] == [classes[i] for i in local]
