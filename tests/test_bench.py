"""``wrn-deploy bench`` end to end: the local runner and a real tritonserver over HTTP and gRPC, timed
in interleaved rounds, the Triton load from client processes (one real process: bench's smoke test)."""

import json

from tests.conftest import run_cli


def test_bench_measures_local_http_and_grpc(kit, tmp_path):
    from wrn_deploy.triton.server import find_tritonserver

    triton = find_tritonserver() is not None
    out = tmp_path / "bench.md"
    proc = run_cli("bench", kit / "m.onnx", "--images", "16", "--batch-size", "4", "--requests", "12",
                   "--concurrency", "1,2", "--rounds", "2", *([] if triton else ["--no-triton"]), "-o", out,
                   process=True)
    rows = json.loads((tmp_path / "bench.md.json").read_text())["rows"]
    paths = [(r["path"], r["concurrency"]) for r in rows]
    want = [("local", 1)] + ([("triton-http", 1), ("triton-http", 2), ("triton-grpc", 1), ("triton-grpc", 2)]
                             if triton else [])
    assert paths == want
    for r in rows:
        assert r["requests"] == 12 and 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] and r["images_per_s"] > 0
    assert "| local | 1 |" in out.read_text() and "Machine:" in proc.stdout and "2 interleaved rounds" in proc.stdout
    if triton:
        assert "each client a separate process" in proc.stdout
