"""Every module imports, and --help runs, with tensorrt and onnxruntime unimportable (and no GPU):
ONNX Runtime comes with the cpu or the gpu extra, so a bare install must still start."""

import pkgutil
import subprocess
import sys

import wrn_deploy

BLOCK_TRT = (
    "import sys; sys.modules['tensorrt'] = None; sys.modules['tritonclient'] = None; "
    "sys.modules['pycuda'] = None; sys.modules['onnxruntime'] = None; sys.modules['openvino'] = None; "
)


def _modules():
    return sorted(m.name for m in pkgutil.walk_packages(wrn_deploy.__path__, "wrn_deploy."))


def test_every_module_imports_without_tensorrt():
    mods = _modules()
    assert len(mods) > 10
    code = BLOCK_TRT + "import importlib\n" + "\n".join(
        f"importlib.import_module({m!r})" for m in mods if m != "wrn_deploy.__main__")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_without_tensorrt_does_not_import_torch():
    code = BLOCK_TRT + ("from wrn_deploy.cli import cli\n"
                        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
                        "assert 'torch' not in sys.modules, 'torch imported by --help'")
    subprocess.run([sys.executable, "-c", code], check=True)
