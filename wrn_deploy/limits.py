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
# BF16 (OpenVINO's --precision-hint bf16 on CPUs with AVX-512 BF16 or AMX) keeps FP32's range but
# 8 significant bits to FP16's 11: it rounds 8x coarser and flips more near-ties, so its gate is its
# own. Measured: a WRN-16-1 trained one epoch on CIFAR-10 (20% top-1, many near-ties), run in BF16
# (PyTorch on the CPU, weights and activations BF16: no BF16 hardware here, OpenVINO computed f32),
# agreed with FP32 on 99.6% of the first 1,000 test images (docs/cpu.md). 98% leaves room for
# weaker models and for accumulation orders that differ by kernel, and still fails a broken export.
BF16_MIN_AGREEMENT = 98.0   # % of images whose top-1 equals PyTorch FP32's
INT8_MAX_DROP = 0.5         # points of top-1 that INT8 may lose against FP32 (a common PTQ budget)
# The drop alone passes an INT8 model that trades as many right answers as it loses: a weak model
# agreeing with FP32 on 75% of the images passed it. So INT8 is also gated on per-image agreement
# (the share of images whose top-1 class equals FP32's), a rate that means the same on any number
# of images. Agreement of INT8 models made by wrn-deploy's own defaults, scored by `wrn-deploy eval`
# (ONNX Runtime CPU, 2-core AMD EPYC, AVX2 only):
#   - WRN-10-1, 2 epochs on the synthetic set (79.75% top-1; the test kit's recipe), 2,000 synthetic
#     test images, measured for this gate: TensorRT form 98.35% (drop 0.65 pts), CPU form 93.95%
#     (drop 0.55 pts, so it fails the drop gate anyway; the guard had kept 3 layers in float);
#   - WRN-16-1, the main command `wrn-deploy pipeline` (synthetic, 4 epochs, 99.55% top-1; run with
#     --no-triton --no-bench), 2,000 synthetic test images, measured for this gate: TensorRT form
#     100.00%, CPU form 99.25% (14 lost / 1 gained: drop 0.65 pts, which fails the drop gate);
#   - WRN-16-1 on real CIFAR-10, first 1,000 test images (docs/int8.md, measured earlier): percentile
#     calibration 98.4-99.2%, min-max 96.9-99.0%, ModelOpt entropy/max 95.9% / 96.8%; the KL-entropy
#     calibration that lost 2 points of top-1 agreed on 87.8%.
# 95% passes every one of those that also passes the drop, and fails the broken ones (87.8%, 75%)
# whatever their drop. Weak models have many near-ties and flip more: lower it for them by name.
INT8_MIN_AGREEMENT = 95.0   # % of images whose top-1 equals PyTorch FP32's

# -- export verification --------------------------------------------------------------------------
FP32_MAX_REL_DIFF = 1e-4    # largest |logit difference| / logit range for an FP32 export (float rounding)
VERIFY_IMAGES = 256         # test images an export is verified on

# -- calibration ----------------------------------------------------------------------------------
CALIB_SIZE = 512            # images that set the activation ranges
CALIB_MIN_IMAGES = 16       # fewer gives ranges that depend on a handful of images
CALIB_METHODS = ("percentile", "image-percentile", "entropy", "minmax")
CALIB_METHOD = "image-percentile"  # how activation ranges are chosen, unless told (measured: docs/int8.md)
CALIB_PERCENTILE = 99.99    # the percentile method's cut of the pooled values (docs/int8.md)
CALIB_IMAGE_PERCENTILE = 98  # the image-percentile method's cut of the images' own extremes (docs/int8.md)
# Decoded calibration and guard images kept (uint8) for the next quantize step of the process
# (quant/decoded.py): the pipeline quantizes one model for two or three targets on the same images.
# 1 GiB holds 512 calibration and 4,488 guard images at 224 px (ImageNet's default 5,000 held out),
# about 720 MiB; larger sets are decoded again by each step, as before.
DECODED_KEEP_BYTES = 1 << 30
DECODED_KEEP_ENTRIES = 4    # calibration and guard images of two image sets



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
# ONNX Runtime's idle threads spin-wait for work by default. Off here: spinning never won by more
# than noise and lost up to 1.47x (benchmarks/ort_threading.py, docs/performance.md). WRN-16-4 on a
# 2-core AVX2 EPYC, images/s spin on -> off: batch 64 FP32 31 -> 39, INT8 84 -> 90; batch 1 FP32
# 28 -> 40, INT8 49 -> 71; with the other core busy, batch 64 within 4% either way and batch 1
# 1.37-1.41x faster off. On a 2-core AVX-512/AMX Xeon, off measured 1.76x (FP32) and 1.18x (INT8).
ORT_SPIN = False


def drop_standard_error(images: int, flips: int, diff: float) -> float:
    """Standard error (points) of a paired top-1 difference: ``flips`` images where exactly one of the
    two models is right, ``diff`` the measured difference in points, on ``images`` images."""
    if images <= 0:
        return math.inf
    f, d = flips / images, diff / 100
    return 100 * math.sqrt(max(f - d * d, 0.0) / images)


# Why the INT8 gate certifies only on enough images (eval and the pipeline).
#
# The drop is a difference of two counts on the same images, so its noise comes from the flips alone:
# an image that only one of the two models gets right moves it by 100/N points. Its standard error is
# SE = 100 * sqrt((f - d^2) / N), f the share of flipped images and d the drop as a fraction. On a
# 1-epoch model with 3% flips and 500 images SE is 0.77 points: a model that truly loses nothing
# then exceeds a 0.5-point budget one time in four, so the verdict is mostly noise, and the same
# files pass on one CPU and fail on another because ONNX Runtime's integer kernels round
# differently with and without VNNI/AMX. Two conditions make a verdict worth printing:
#   1. the budget spans two flips (N >= 200 / budget, 400 images for 0.5 points), as for the guard;
#   2. SE <= budget: a model with no true drop then fails by chance at most about one time in six
#      (one-sided normal tail at one SE). Asking for less noise costs images quadratically: at 2.5%
#      flips SE <= budget needs 1,000 images, SE <= budget / 2 would need 4,000.
# Below either, the gate does not pass: the report says "not certified" with the image count that
# would be enough at the measured flip rate. The INT8 models in README and docs/pipeline.md flip
# 0.5-1% of the first 1,000 CIFAR-10 test images (SE 0.22-0.32 points), so those 1,000 certify
# them; ImageNet's 50,000 validation images certify any flip rate.
def int8_images_needed(flips: int, images: int, budget: float) -> int:
    """Images that would make SE <= budget at this flip rate, and never fewer than two flips' worth."""
    f = flips / max(images, 1)
    return max(guard_min_images(budget), math.ceil(f * (100 / max(budget, 0.05)) ** 2))


@dataclass(frozen=True)
class Gates:
    """The pass/fail gates of a parity check; the defaults are the project's policy above."""

    fp32_min_agreement: float = FP32_MIN_AGREEMENT
    fp16_min_agreement: float = FP16_MIN_AGREEMENT
    int8_max_drop: float = INT8_MAX_DROP
    int8_min_agreement: float = INT8_MIN_AGREEMENT
    bf16_min_agreement: float = BF16_MIN_AGREEMENT

    def check(self, stats, compute: str) -> list:
        """[(gate description, measured, passed)] for a candidate computing in ``compute``.

        ``stats`` is a ``parity.stats.Paired`` (agreement in %, ``diff`` = candidate top-1 minus the
        reference's in points, the flips and the image count). The small epsilons keep an exact
        boundary from failing on rounding.
        """
        if compute == "int8":
            return self._int8(stats)
        a = float(stats.agreement)
        bound = {"fp16": self.fp16_min_agreement, "bf16": self.bf16_min_agreement}.get(compute, self.fp32_min_agreement)
        return [(f"top-1 agreement >= {bound:g}%", a, a >= bound - 1e-9)]

    def _int8(self, stats) -> list:
        budget = self.int8_max_drop
        drop = -float(stats.diff) + 0.0  # + 0.0 turns -0.0 into 0.0
        flips = stats.ref_only_right + stats.cand_only_right
        se = drop_standard_error(stats.images, flips, stats.diff)
        need = int8_images_needed(flips, stats.images, budget)
        certified = stats.images >= guard_min_images(budget) and se <= budget + 1e-9
        sample = (f"certified: drop's standard error <= {budget:g} pts" if certified else
                  f"not certified: drop's standard error <= {budget:g} pts needs about {need} images here, "
                  f"had {stats.images}")
        a, bound = float(stats.agreement), self.int8_min_agreement
        return [(f"top-1 drop <= {budget:g} pts", drop, drop <= budget + 1e-9),
                (f"top-1 agreement >= {bound:g}%", a, a >= bound - 1e-9), (sample, se, certified)]


# -- FP16 range (the FP16 export and INT8's FP16 remainder) ---------------------------------------
FP16_MAX = 65504.0          # largest finite FP16 value: a weight beyond it stops the FP16 export
FP16_TINY = 5.96e-08        # smallest positive FP16 subnormal: smaller magnitudes flush to zero
