"""The pipeline's serving step against a real tritonserver (from the serve extra)."""

import pytest

from tests.conftest import run_cli
from tests.pipeline.conftest import FAST, report, statuses


def test_served_answers_are_scored_like_the_local_ones(copy_of_run):
    from wrn_deploy.triton.server import find_tritonserver

    if find_tritonserver() is None:
        pytest.skip("no tritonserver here (pip install 'wrn-deploy[serve]')")
    st = statuses(run_cli("pipeline", *FAST, "-o", copy_of_run).stdout)
    assert st["triton-repo"] == "done" and st["serve"] == "done" and st["eval-fp32"] == "cached"
    rows = {r["artifact"]: r for r in report(copy_of_run)["rows"]}
    for name in ("fp32", "fp16", "int8", "int8-cpu"):
        served = rows[f"{name} (served)"]
        assert served["backend"] == "triton-python-http" and served["bench"]["p50_ms"] > 0
        # The Python backend runs the same ONNX Runtime session: identical logits, identical statistics.
        assert served["stats"] == rows[name]["stats"]
    assert (copy_of_run / "triton" / "wrn-int8" / "config.pbtxt").is_file()
