"""A real tritonserver on loopback (the 'serve' extra's, Python backend on the CPU), answering
CIFAR-10 images (the real ones where ../shared exists) exactly as the local runner does: over HTTP
and gRPC, under concurrent load, after bad requests, and when it is killed mid-load."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.conftest import ROOT
from wrn_deploy.triton.server import Server, find_tritonserver, free_port

pytestmark = pytest.mark.skipif(find_tritonserver() is None, reason="needs a tritonserver (the 'serve' extra)")
MODEL = "wrn"


@pytest.fixture(scope="module")
def repo(served_onnx, tmp_path_factory):
    from wrn_deploy.triton.config import ServeOptions
    from wrn_deploy.triton.repository import write_repository

    root = tmp_path_factory.mktemp("repo")
    write_repository(served_onnx, root, ServeOptions(MODEL, "python", max_batch=8, instances=1), check_load=False)
    return root


@pytest.fixture(scope="module")
def server(repo, tmp_path_factory):
    s = Server(repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
               log=tmp_path_factory.mktemp("log") / "server.log")
    with s:
        yield s


@pytest.fixture(scope="module")
def images(cifar_dir):
    from wrn_deploy.data import load_dataset

    return load_dataset("cifar10", cifar_dir, val_size=200, progress=False).test.images.astype(np.float32) / np.float32(255)


@pytest.fixture(scope="module")
def local(served_onnx, images):
    """The local runner's logits for every image, one image at a time (as single requests run)."""
    from wrn_deploy.runners.ort_runner import OrtRunner

    with OrtRunner(served_onnx, threads=1) as r:
        return np.concatenate([r.infer(images[i:i + 1]) for i in range(len(images))])


def _infer(module, client, x: np.ndarray):
    inp = module.InferInput("images", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return client.infer(MODEL, [inp], outputs=[module.InferRequestedOutput("logits")]).as_numpy("logits")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_every_cifar_image_gets_the_local_answer(protocol, server, images, local):
    import tritonclient.grpc as grpc
    import tritonclient.http as http

    module = {"http": http, "grpc": grpc}[protocol]
    client = module.InferenceServerClient(server.http if protocol == "http" else server.grpc)
    got = np.concatenate([_infer(module, client, images[i:i + 1]) for i in range(len(images))])
    assert len(got) == 1000
    # Same runtime, same thread count, same batch of one: the same bits.
    assert np.array_equal(got, local), np.abs(got - local).max()


def test_concurrent_clients_are_batched_and_answered_right(server, images, local):
    import tritonclient.grpc as grpc

    errors, mismatches = [], []

    def client_loop(seed: int):
        rng = random.Random(seed)
        client = grpc.InferenceServerClient(server.grpc)
        for _ in range(50):
            n = rng.randint(1, 8)
            start = rng.randrange(0, len(images) - n)
            try:
                got = _infer(grpc, client, images[start:start + n])
            except Exception as e:  # noqa: BLE001 - counted, the test asserts there are none
                errors.append(repr(e))
                continue
            # Batched with other requests, the numbers may differ in the last bits; the answer may not.
            want = local[start:start + n]
            if not (np.allclose(got, want, rtol=1e-4, atol=1e-4) and (got.argmax(1) == want.argmax(1)).all()):
                mismatches.append((seed, start, n, float(np.abs(got - want).max())))

    threads = [threading.Thread(target=client_loop, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and mismatches == []
    stats = grpc.InferenceServerClient(server.grpc).get_inference_statistics(MODEL).model_stats[0]
    requests, executions = stats.inference_stats.success.count, stats.execution_count
    assert requests >= 400 and executions < requests  # dynamic batching merged concurrent requests


@pytest.mark.parametrize("case", ["shape", "dtype", "batch", "model", "input"])
def test_bad_requests_get_errors_and_the_server_stays_up(case, server, images):
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    client = http.InferenceServerClient(server.http)
    x, name, model, dtype = np.random.rand(1, 3, 32, 32).astype(np.float32), "images", MODEL, "FP32"
    if case == "shape":
        x = x[:, :, :16, :16].copy()
    elif case == "dtype":
        x, dtype = x.astype(np.float64), "FP64"
    elif case == "batch":
        x = np.random.rand(9, 3, 32, 32).astype(np.float32)  # max batch is 8
    elif case == "model":
        model = "nope"
    else:
        name = "pixels"
    inp = http.InferInput(name, list(x.shape), dtype)
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException):
        client.infer(model, [inp])
    assert client.is_server_ready() and client.is_model_ready(MODEL)
    assert _infer(http, client, images[:2]).shape == (2, 10)


def _group_alive(pgid: int) -> list:
    alive = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.getpgid(int(pid)) == pgid:
                    alive.append(int(pid))
            except ProcessLookupError:
                pass
    return alive


def test_killed_server_fails_clients_and_serve_exits_nonzero(repo, images):
    import tritonclient.grpc as grpc

    ports = [free_port() for _ in range(3)]
    serve = subprocess.Popen([sys.executable, "-m", "wrn_deploy", "serve", str(repo), "--http-port", str(ports[0]),
                              "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2])], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "serving" in serve.stdout.readline()
    client = grpc.InferenceServerClient(f"127.0.0.1:{ports[1]}")
    assert _infer(grpc, client, images[:1]).shape == (1, 10)
    children = subprocess.run(["pgrep", "-f", f"grpc-port={ports[1]}"], capture_output=True, text=True).stdout.split()
    (server_pid,) = [int(p) for p in children]
    pgid = os.getpgid(server_pid)
    failures = []

    def load():
        for _ in range(200):
            try:
                _infer(grpc, client, images[:4])
            except Exception as e:  # noqa: BLE001
                failures.append(e)
                return
            time.sleep(0.01)

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.3)
    os.kill(server_pid, signal.SIGKILL)
    t.join()
    assert failures, "clients kept getting answers from a killed server"
    assert serve.wait() == 2 and "stopped by itself" in serve.stderr.read()
    deadline = time.monotonic() + 20
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group_alive(pgid) == []  # no backend stub left behind


def test_sigterm_stops_serve_and_its_server(repo):
    ports = [free_port() for _ in range(3)]
    serve = subprocess.Popen([sys.executable, "-m", "wrn_deploy", "serve", str(repo), "--http-port", str(ports[0]),
                              "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2])], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "serving" in serve.stdout.readline()
    (server_pid,) = [int(p) for p in subprocess.run(["pgrep", "-f", f"grpc-port={ports[1]}"], capture_output=True,
                                                    text=True).stdout.split()]
    pgid = os.getpgid(server_pid)
    serve.send_signal(signal.SIGTERM)
    assert serve.wait() == 0 and "stopped" in serve.stdout.read()
    assert _group_alive(pgid) == []


def test_port_in_use_is_one_clear_line(repo):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "wrn_deploy", "serve", str(repo), "--http-port", str(busy),
                               "--grpc-port", str(free_port()), "--metrics-port", str(free_port())], cwd=ROOT,
                              capture_output=True, text=True)
    assert proc.returncode == 2 and f"port {busy}" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_backend_the_server_lacks_is_one_clear_line(served_onnx, tmp_path):
    """An openvino model (a repository for NVIDIA's Triton container) under pytriton's server, which
    has only the Python backend: serve refuses it before a server starts."""
    from tests.conftest import run_cli

    if (find_tritonserver().backends / "openvino").is_dir():
        pytest.skip("this tritonserver has an openvino backend")
    run_cli("triton", served_onnx, "-o", tmp_path / "repo", "--name", "ov", "--backend", "openvino",
            "--no-check-load")
    proc = run_cli("serve", tmp_path / "repo", "--http-port", free_port(), "--grpc-port", free_port(),
                   "--metrics-port", free_port(), check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "model ov needs Triton's openvino backend" in proc.stderr and "--backend python" in proc.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_client_example_classifies_image_files(protocol, server, repo, cifar_dir):
    files = sorted((cifar_dir / "test" / "cat").glob("*.png"))[:3]
    url = server.grpc if protocol == "grpc" else server.http
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "triton_client.py"), "--model", MODEL, "--url", url,
                           "--card", repo / MODEL / "card.json", *(["--grpc"] if protocol == "grpc" else []),
                           *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(str(f)) for line, f in zip(lines, files))
    from wrn_deploy.data.synthetic import CLASSES

    assert all(sum(name in line for name in CLASSES) >= 3 for line in lines)  # top 3 with their labels


def test_client_example_preprocesses_by_the_card(server, repo, served_onnx, cifar_dir, tmp_path, monkeypatch,
                                                 capsys):
    """The example resizes a photo as the card says (wrn_deploy.data.preprocess, torchvision's rule)
    and the server's top class is the local runner's on that tensor; a card without a resize refuses
    the photo with one line, as the library does. (The example's main runs in this process: a new
    interpreter per run would cost more than the test.)"""
    import importlib.util
    import json

    import torch
    from PIL import Image

    from wrn_deploy.card import Card
    from wrn_deploy.data.preprocess import image_tensor
    from wrn_deploy.runners.ort_runner import OrtRunner

    spec = importlib.util.spec_from_file_location("triton_client", ROOT / "examples" / "triton_client.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    def run(card) -> int:
        monkeypatch.setattr(sys, "argv", ["triton_client.py", "--model", MODEL, "--url", server.http, "--topk", "1",
                                          "--card", str(card), str(photo)])
        return example.main()

    photo = tmp_path / "photo.jpg"
    Image.open(min((cifar_dir / "test").glob("*/*.png"))).convert("RGB").resize((500, 375)).save(photo, quality=90)
    card = json.loads((repo / MODEL / "card.json").read_text())
    resized = tmp_path / "card.json"
    resized.write_text(json.dumps(dict(card, preprocess={"resize": 40, "interpolation": "bicubic"})))
    assert run(resized) == 0
    x = image_tensor(photo, Card.from_dict(json.loads(resized.read_text()), "card"))
    with OrtRunner(served_onnx) as r:
        best = int(r.infer(torch.stack([x])).argmax())
    assert capsys.readouterr().out.split()[1] == Card.from_dict(card, "card").classes[best]
    assert run(repo / MODEL / "card.json") == 2
    err = capsys.readouterr().err
    assert "500x375" in err and len(err.strip().splitlines()) == 1
