"""What every benchmark prints first: the machine and the library versions."""

import os
import platform

from wrn_deploy.cpuinfo import cpu_name, instruction_set


def machine_report() -> str:
    import torch

    from wrn_deploy.card import versions

    lines = [f"machine: {platform.machine()} {platform.processor() or ''} {cpu_name()}, "
             f"{os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}",
             f"instruction set: {instruction_set()}"]
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        lines.append(f"gpu: {p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}, "
                     f"CUDA {torch.version.cuda}")
    else:
        lines.append("gpu: none")
    v = versions("onnx", "onnxruntime", "openvino", "nncf")
    lines.append("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    return "\n".join(lines)


def calibration_images(fp32, data_dir, calib_size: int, seed: int = 0, manifest=None):
    """The images ``wrn-deploy quantize FP32 --data-dir DATA_DIR --calib-size N`` calibrates on (chosen
    by ``calibset.choose`` as it chooses them), as float32 N x 3 x H x W in [0, 1]. With ``manifest``
    (the calibration manifest a quantize run wrote), they must be exactly the ones it names."""
    import json

    import numpy as np

    from wrn_deploy.card import read_card
    from wrn_deploy.quant import calibset

    chosen = calibset.choose(read_card(fp32), None, str(data_dir), calib_size, seed, "val", False, False)
    if manifest is not None and json.loads(open(manifest).read())["ids"] != chosen.calib.ids:
        raise SystemExit(f"the images chosen here are not those {manifest} names")
    return np.concatenate(list(chosen.calib.chunks(64)))


def nncf_quantize(fp32, out, calib) -> float:
    """NNCF's default INT8 quantization of the ONNX model ``fp32`` on ``calib`` (N x 3 x H x W, one
    image a sample), written to ``out``; seconds taken."""
    import time

    import nncf
    import onnx

    model = onnx.load(str(fp32))
    name = model.graph.input[0].name
    t0 = time.perf_counter()
    q = nncf.quantize(model, nncf.Dataset([x[None] for x in calib], lambda x: {name: x}), subset_size=len(calib))
    onnx.save(q, str(out))
    return time.perf_counter() - t0
