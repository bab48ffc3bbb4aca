"""Card strings are untrusted: no terminal escape reaches the terminal, no HTML reaches Markdown."""

from wrn_deploy.parity.report import markdown, terminal

STATS = {"ref_top1": 90.0, "cand_top1": 90.0, "ref_top5": 99.0, "cand_top5": 99.0, "diff": 0.0,
         "diff_ci95": [0.0, 0.0], "agreement": 100.0, "ref_only_right": 0, "cand_only_right": 0,
         "mcnemar_p": 1.0, "max_abs_logit_diff": 0.0, "mean_abs_logit_diff": 0.0}


def _report(arch, path):
    return {"candidate": {"arch": arch, "precision": "fp32", "runner": "onnxruntime-cpu", "path": path},
            "reference": {"path": "ref.safetensors"}, "stats": STATS,
            "data": {"images": 10, "dataset": "synthetic", "split": "test", "calibration_overlap": 3},
            "gates": [{"gate": "top-1 agreement >= 99.9%", "measured": 100.0, "passed": True}],
            "passed": True, "versions": {"torch": "2.14.1"}}


def test_hostile_card_strings_are_neutralised():
    rep = _report("<script>alert(1)</script>|x", "m\x1b[2J\x1b]0;pwned\x07.onnx")
    md = markdown(rep)
    assert "<script>" not in md and "&lt;script&gt;" in md and "\x1b" not in md and "|x" not in md
    term = terminal(rep)
    assert "\x1b" not in term and "\x07" not in term and "m[2J]0;pwned.onnx" in term
    assert "calibration images scored (allowed)" in term and "calibration images scored (allowed)" in md
