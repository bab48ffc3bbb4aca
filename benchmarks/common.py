"""What every benchmark prints first: the machine and the library versions."""

import os
import platform


def machine_report() -> str:
    import torch

    from wrn_deploy.card import versions

    lines = [f"machine: {platform.machine()} {platform.processor() or ''} {_cpu_name()}, "
             f"{os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}",
             f"instruction set: {instruction_set()}"]
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        lines.append(f"gpu: {p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}, "
                     f"CUDA {torch.version.cuda}")
    else:
        lines.append("gpu: none")
    v = versions("onnx", "onnxruntime")
    lines.append("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    return "\n".join(lines)


# The CPU features INT8 and BF16 speed depends on, weakest first (Linux /proc/cpuinfo flag names).
FEATURES = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
            ("avx512_bf16", "AVX-512 BF16"), ("amx_int8", "AMX-INT8"), ("amx_bf16", "AMX-BF16"))


def instruction_set() -> str:
    """The INT8/BF16-relevant instruction sets this CPU has, e.g. "AVX2 (no AVX-512, VNNI or AMX)"."""
    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    have = [name for flag, name in FEATURES if flag in flags]
    if not any("AVX-512" in h or "AMX" in h or "VNNI" in h for h in have):
        return ", ".join(have or ["no AVX2"]) + " (no AVX-512, VNNI or AMX)"
    return ", ".join(have)


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
