"""Every limit and default that more than one step relies on, in one place.

The commands read their defaults from here, so a policy (how much top-1 INT8 may lose, say) is
written once. Each number carries its unit and the reason it was chosen.
"""

import math
from dataclasses import dataclass

# -- parity gates (eval, export verification, the INT8 guard) ---------------------------------------
FP32_MIN_AGREEMENT = 99.9   # % of images whose top-1 equals PyTorch FP32's: FP32 should change nothing
# FP16 rounding flips near-ties, about as often either way; agreement is a per-image rate, so one
# bound means the same on 256 verification images and on a 10,000-image test set (a bound on the
# top-1 difference in points does not: one flip in 256 images is 0.39 points).
FP16_MIN_AGREEMENT = 99.0   # % of images whose top-1 equals PyTorch FP32's
INT8_MAX_DROP = 0.5         # points of top-1 that INT8 may lose against FP32 (a common PTQ budget)

# -- export verification --------------------------------------------------------------------------
FP32_MAX_REL_DIFF = 1e-4    # largest |logit difference| / logit range for an FP32 export (float rounding)
VERIFY_IMAGES = 256         # test images an export is verified on

# -- calibration ----------------------------------------------------------------------------------
CALIB_SIZE = 512            # images that set the activation ranges
CALIB_MIN_IMAGES = 16       # fewer gives ranges that depend on a handful of images
CALIB_PERCENTILE = 99.99    # the default percentile method's cut (measured best here: docs/int8.md)



def guard_min_images(max_drop: float) -> int:
    """The fewest held-out images the INT8 guard certifies a ``max_drop``-point bound on.

    One flipped image moves top-1 by 100/N points. Asking that the bound span at least two flips
    (100/N <= max_drop / 2) gives N >= 200 / max_drop: 400 images for 0.5 points. That makes the
    bound resolvable, not tight: a 95% interval of +-0.5 points would need about 150,000 x the
    flip rate (about 3,000 images at 2% flips), so the guard reports its interval beside the drop.
    """
    return math.ceil(200 / max(max_drop, 0.05))


# -- evaluation -----------------------------------------------------------------------------------
BATCH = 64                  # images per inference call in eval, verification and the guard


@dataclass(frozen=True)
class Gates:
    """The pass/fail gates of a parity check; the defaults are the project's policy above."""

    fp32_min_agreement: float = FP32_MIN_AGREEMENT
    fp16_min_agreement: float = FP16_MIN_AGREEMENT
    int8_max_drop: float = INT8_MAX_DROP

    def check(self, agreement: float, diff: float, compute: str) -> list:
        """[(gate description, measured, passed)] for a candidate computing in ``compute``.

        ``agreement`` is the % of equal top-1 predictions, ``diff`` the candidate's top-1 minus the
        reference's, in points. The small epsilons keep an exact boundary from failing on rounding.
        """
        a = float(agreement)
        if compute == "int8":
            drop = -float(diff) + 0.0  # + 0.0 turns -0.0 into 0.0
            return [(f"top-1 drop <= {self.int8_max_drop:g} pts", drop, drop <= self.int8_max_drop + 1e-9)]
        bound = self.fp16_min_agreement if compute in ("fp16", "bf16") else self.fp32_min_agreement
        return [(f"top-1 agreement >= {bound:g}%", a, a >= bound - 1e-9)]
