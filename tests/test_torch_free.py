"""Commands that run only ONNX Runtime never import torch (a few seconds of every such command):
bench, triton, report, the served Python-backend model of an ONNX file, and the data path that
feeds them. Each runs in a child process in which importing torch or torchvision fails."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import CIFAR10_CLASSES, run_cli

NO_TORCH = textwrap.dedent("""\
    import sys
    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "torchvision"):
                raise ImportError(f"{name} imported where no PyTorch runs")
    sys.meta_path.insert(0, NoTorch())
    """)


def without_torch(code: str, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def cli_without_torch(*args, cwd=None) -> subprocess.CompletedProcess:
    return without_torch("from wrn_deploy.cli import main\nmain(sys.argv[1:])\n", *args, cwd=cwd)


@pytest.fixture(scope="module")
def folder_model(tmp_path_factory, cifar_dir):
    """A random-weight WRN-10-1 whose card names the CIFAR-10 image folder, exported to FP32 ONNX."""
    import torch

    from wrn_deploy.arch import create_model
    from wrn_deploy.card import Step, new_card, versions
    from wrn_deploy.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("folder-model")
    torch.manual_seed(3)
    card = new_card("wrn-10-1", CIFAR10_CLASSES, 32, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26),
                    Step("test", {}, versions()), dataset={"name": "imagefolder"})
    save_checkpoint(root / "m.safetensors", create_model("wrn-10-1", 10, dropout=0.0).state_dict(), card)
    run_cli("export", root / "m.safetensors", "-o", root / "m.onnx", "--no-verify")
    return root


def test_bench_and_triton_run_without_torch(folder_model, cifar_dir):
    onnx = folder_model / "m.onnx"
    bench = cli_without_torch("bench", onnx, "--data-dir", cifar_dir, "--no-triton", "--images", 8, "--requests", 10,
                              "--rounds", 1, "-o", folder_model / "bench")
    assert bench.returncode == 0, bench.stderr
    assert json.loads((folder_model / "bench.json").read_text())["rows"][0]["path"] == "local"
    repo = cli_without_torch("triton", onnx, "-o", folder_model / "repo", "--backend", "python")
    assert repo.returncode == 0, repo.stderr


def test_the_data_path_gives_folder_images_without_torch(folder_model, cifar_dir):
    """The test split's images, and logits of the ONNX file on them, in a process without torch;
    the same as this process (with torch) gets."""
    from wrn_deploy.card import read_card
    from wrn_deploy.data import for_card
    from wrn_deploy.runners import runner_for

    code = """
        import numpy as np
        from wrn_deploy.card import read_card
        from wrn_deploy.data import for_card
        from wrn_deploy.runners import runner_for
        onnx, data, out = sys.argv[1:]
        chosen = for_card(read_card(onnx), "test", data_dir=data).first(16)
        with runner_for(onnx) as r:
            np.savez(out, images=chosen.images(), labels=chosen.labels, logits=r.infer(chosen.images()))
        """
    child = without_torch(code, folder_model / "m.onnx", cifar_dir, folder_model / "child.npz")
    assert child.returncode == 0, child.stderr
    got = np.load(folder_model / "child.npz")
    chosen = for_card(read_card(folder_model / "m.onnx"), "test", data_dir=cifar_dir).first(16)
    with runner_for(folder_model / "m.onnx") as r:
        assert np.array_equal(got["images"], chosen.images()) and np.array_equal(got["labels"], chosen.labels)
        assert np.array_equal(got["logits"], r.infer(chosen.images()))


def test_the_served_python_model_runs_an_onnx_file_without_torch(folder_model):
    """Triton's Python backend calls model.py's initialize and execute; here with a stand-in for
    triton_python_backend_utils, and two requests batched together."""
    from wrn_deploy.runners import runner_for

    version = folder_model / "served" / "1"
    version.mkdir(parents=True)
    (version / "model.onnx").write_bytes((folder_model / "m.onnx").read_bytes())
    code = """
        import json, types
        import numpy as np
        utils = types.ModuleType("triton_python_backend_utils")
        class Tensor:
            def __init__(self, name, array): self.name, self.array = name, array
            def as_numpy(self): return self.array
        class Response:
            def __init__(self, output_tensors=None, error=None): self.outputs, self.error = output_tensors, error
        utils.Tensor, utils.InferenceResponse, utils.TritonError = Tensor, Response, str
        utils.get_input_tensor_by_name = lambda request, name: Tensor(name, request[name])
        sys.modules["triton_python_backend_utils"] = utils
        from wrn_deploy.triton.python_model import TritonPythonModel
        repo, out = sys.argv[1:]
        config = {"input": [{"name": "images"}], "output": [{"name": "logits", "data_type": "TYPE_FP32"}]}
        model = TritonPythonModel()
        model.initialize({"model_repository": repo, "model_version": "1", "model_config": json.dumps(config)})
        pixels = np.random.default_rng(0).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
        images = pixels.astype(np.float32) / 255
        answers = model.execute([{"images": images[:1]}, {"images": images[1:]}])
        assert all(a.error is None for a in answers), [a.error for a in answers]
        np.savez(out, pixels=pixels, logits=np.concatenate([a.outputs[0].array for a in answers]))
        model.finalize()
        """
    child = without_torch(code, folder_model / "served", folder_model / "served.npz")
    assert child.returncode == 0, child.stderr
    got = np.load(folder_model / "served.npz")
    with runner_for(folder_model / "m.onnx") as r:
        want = r.infer(got["pixels"].astype(np.float32) / 255)
    np.testing.assert_allclose(got["logits"], want, rtol=1e-5, atol=1e-6)
