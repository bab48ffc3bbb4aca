"""Pass/fail gates per precision, with the defaults of the project's parity policy."""

from dataclasses import dataclass

from wrn_deploy.parity.stats import Paired


@dataclass
class Gates:
    fp32_min_agreement: float = 99.9   # % of images with the same top-1 as PyTorch FP32
    fp16_max_abs_diff: float = 0.1     # |top-1 difference|, points
    int8_max_drop: float = 0.5         # top-1 drop, points


def check(p: Paired, precision: str, gates: Gates) -> list:
    """[(gate description, measured, passed)] for the candidate's precision."""
    # The small epsilons keep a gate from failing on float rounding of an exact boundary.
    if precision == "fp16":
        diff = abs(float(p.diff))
        return [(f"|top-1 difference| <= {gates.fp16_max_abs_diff:g} pts", diff,
                 diff <= gates.fp16_max_abs_diff + 1e-9)]
    if precision == "int8":
        drop = -float(p.diff) + 0.0  # + 0.0 turns -0.0 into 0.0
        return [(f"top-1 drop <= {gates.int8_max_drop:g} pts", drop, drop <= gates.int8_max_drop + 1e-9)]
    agree = float(p.agreement)
    return [(f"top-1 agreement >= {gates.fp32_min_agreement:g}%", agree, agree >= gates.fp32_min_agreement - 1e-9)]
