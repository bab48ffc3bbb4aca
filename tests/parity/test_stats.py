import numpy as np
import pytest
from scipy.stats import binomtest

from wrn_deploy.limits import Gates
from wrn_deploy.parity.stats import bootstrap_diff_ci, mcnemar_exact, paired


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (3, 9), (10, 10), (0, 12), (40, 61)])
def test_mcnemar_exact_equals_a_binomial_test_of_the_flips(b, c):
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_paired_counts_on_a_known_example():
    labels = np.array([0, 1, 2, 3])
    ref = np.eye(4)[[0, 1, 2, 0]] * 5        # right, right, right, wrong
    cand = np.eye(4)[[0, 2, 2, 3]] * 5       # right, wrong, right, right
    p = paired(ref, cand, labels, resamples=200)
    assert (p.ref_only_right, p.cand_only_right) == (1, 1)
    assert p.ref_top1 == p.cand_top1 == 75.0 and p.agreement == 50.0 and p.diff == 0.0
    assert p.ref_top5 == 100.0 and p.max_abs_logit_diff == 5.0


def test_bootstrap_interval_covers_the_observed_difference():
    rng = np.random.default_rng(1)
    ref_ok = rng.random(2000) < 0.9
    cand_ok = ref_ok.copy()
    cand_ok[:40] = False                     # candidate loses up to 40 of the first images
    lo, hi = bootstrap_diff_ci(ref_ok, cand_ok)
    diff = 100 * (cand_ok.mean() - ref_ok.mean())
    assert lo < diff < hi and hi < 0


def test_gates_per_precision():
    labels = np.arange(1000) % 10
    ref = np.eye(10)[labels]
    cand = ref.copy()
    cand[:2] = np.eye(10)[(labels[:2] + 1) % 10]   # two images flip to wrong: -0.2 points, 99.8% agree
    p = paired(ref, cand, labels, resamples=100)
    def check(p, compute, gates):
        return gates.check(p, compute)

    assert not check(p, "fp32", Gates())[0][2]     # agreement 99.8% < 99.9%
    assert check(p, "fp16", Gates())[0][2]         # agreement 99.8% >= 99%
    assert not check(p, "fp16", Gates(fp16_min_agreement=99.9))[0][2]
    assert check(p, "int8", Gates())[0][2]         # drop 0.2 <= 0.5
    assert check(p, "fp32", Gates(fp32_min_agreement=99.8))[0][2]
    # BF16 has its own bound, not FP16's
    assert check(p, "bf16", Gates())[0][:2] == ("top-1 agreement >= 98%", 99.8)
    assert not check(p, "bf16", Gates(bf16_min_agreement=99.9, fp16_min_agreement=90))[0][2]


def test_int8_gate_certifies_only_when_the_sample_resolves_the_budget():
    """The drop gate and the sample gate: 1,000 images with 2 flips certify a 0.5-point budget; the
    same flip rate on 200 images spans less than two flips, and 6% flips on 1,000 images leave a
    standard error (0.77 pts) above the budget, so neither is certified whatever the drop."""
    from wrn_deploy.limits import drop_standard_error, int8_images_needed

    def int8(n, lost, gained):
        labels = np.arange(n) % 10
        ref = np.eye(10)[labels]
        cand = ref.copy()
        cand[:lost] = np.eye(10)[(labels[:lost] + 1) % 10]
        ref[lost:lost + gained] = np.eye(10)[(labels[lost:lost + gained] + 1) % 10]
        return Gates().check(paired(ref, cand, labels, resamples=10), "int8")

    (drop, _, sample) = int8(1000, 2, 0)
    assert drop[2] and sample[2] and sample[0].startswith("certified") and sample[1] == pytest.approx(
        100 * np.sqrt((0.002 - 0.002**2) / 1000))
    (drop, _, sample) = int8(200, 1, 0)
    assert drop[2] and not sample[2] and "needs about 400 images" in sample[0]
    (drop, _, sample) = int8(1000, 30, 30)                           # drop 0, SE 0.77 points
    assert drop[1] == 0.0 and drop[2] and not sample[2]
    assert sample[1] == pytest.approx(drop_standard_error(1000, 60, 0.0)) and sample[1] > 0.5
    assert f"needs about {int8_images_needed(60, 1000, 0.5)} images" in sample[0]
    assert int8_images_needed(60, 1000, 0.5) == 2400                 # 6% x (100 / 0.5)^2
    (drop, _, sample) = int8(1000, 7, 0)                             # a real drop is still a failure
    assert not drop[2] and drop[1] == pytest.approx(0.7)


def test_int8_gate_needs_agreement_as_well_as_the_drop():
    """An INT8 model that loses as many right answers as it gains passes the drop; the agreement
    gate (limits.INT8_MIN_AGREEMENT) fails it, on a sample large enough to certify the drop."""
    from wrn_deploy.limits import INT8_MIN_AGREEMENT

    labels = np.arange(4000) % 10
    ref = np.eye(10)[labels]
    cand = ref.copy()
    swap = 4000 * (100 - INT8_MIN_AGREEMENT) / 100 + 40      # just beyond the default's disagreements
    n = int(swap) // 2
    cand[:n] = np.eye(10)[(labels[:n] + 1) % 10]            # n right answers lost...
    ref[n:2 * n] = np.eye(10)[(labels[n:2 * n] + 1) % 10]   # ...and n gained: no drop at all
    drop, agree, _ = Gates().check(paired(ref, cand, labels, resamples=10), "int8")
    assert drop[1] == 0.0 and drop[2]
    assert agree[0] == f"top-1 agreement >= {INT8_MIN_AGREEMENT:g}%" and agree[1] < INT8_MIN_AGREEMENT
    assert not agree[2]
    assert Gates(int8_min_agreement=agree[1]).check(paired(ref, cand, labels, resamples=10), "int8")[1][2]
