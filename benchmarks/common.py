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
