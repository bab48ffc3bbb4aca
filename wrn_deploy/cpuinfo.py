"""What the CPU can do for INT8 and BF16 inference, read from Linux's /proc/cpuinfo (no import of
any runtime): the speed of an INT8 or BF16 model depends on these instructions more than on the
runtime, so every CPU measurement names them."""

# The CPU features INT8 and BF16 speed depends on, weakest first (Linux /proc/cpuinfo flag names).
FEATURES = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
            ("avx512_bf16", "AVX-512 BF16"), ("amx_int8", "AMX-INT8"), ("amx_bf16", "AMX-BF16"))


def _flags() -> set | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return set()


def features() -> list:
    """The INT8/BF16-relevant features present, e.g. ["AVX2"] ([] when unknown)."""
    flags = _flags() or set()
    return [name for flag, name in FEATURES if flag in flags]


def native_bf16() -> bool:
    """Whether the CPU computes BF16 itself (AVX-512 BF16 or AMX); elsewhere runtimes emulate it or
    fall back to FP32."""
    return bool({"AVX-512 BF16", "AMX-BF16"} & set(features()))


def instruction_set() -> str:
    """The INT8/BF16-relevant instruction sets this CPU has, e.g. "AVX2 (no AVX-512, VNNI or AMX)"."""
    if _flags() is None:
        return "unknown (no /proc/cpuinfo)"
    have = features()
    if not any("AVX-512" in h or "AMX" in h or "VNNI" in h for h in have):
        return ", ".join(have or ["no AVX2"]) + " (no AVX-512, VNNI or AMX)"
    return ", ".join(have)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def describe() -> dict:
    """{cpu, logical_cpus, instruction_set} for reports."""
    import os

    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "instruction_set": instruction_set()}
