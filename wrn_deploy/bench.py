"""Latency and throughput of an artifact: locally through its runner, and through a real Triton
server over HTTP and gRPC at several client concurrencies, on real images, after a warm-up.

Every request carries ``batch`` images; latency is per request (p50/p90/p99, milliseconds) and
throughput is images per second over the whole timed run.
"""

import platform
import threading
import time
from dataclasses import dataclass

import numpy as np

WARMUP = 10  # requests per client before timing starts


@dataclass
class Row:
    path: str           # local | triton-http | triton-grpc
    concurrency: int
    latencies: list     # seconds per request
    seconds: float      # wall time of the timed part
    images: int

    def to_dict(self) -> dict:
        p50, p90, p99 = np.percentile(np.array(self.latencies) * 1000, [50, 90, 99])
        return {"path": self.path, "concurrency": self.concurrency, "requests": len(self.latencies),
                "p50_ms": round(float(p50), 3), "p90_ms": round(float(p90), 3), "p99_ms": round(float(p99), 3),
                "images_per_s": round(self.images / self.seconds, 1)}


def _batches(images: np.ndarray, batch: int, count: int, offset: int = 0) -> list:
    n = len(images)
    return [images[(offset + i * batch + np.arange(batch)) % n] for i in range(count)]


def bench_local(runner, images: np.ndarray, batch: int, requests: int) -> Row:
    """``requests`` timed calls of ``batch`` images through ``runner``, after a warm-up."""
    import torch

    with runner:
        for x in _batches(images, batch, WARMUP):
            runner.infer(torch.from_numpy(x))
        runner.inference_times.clear()
        t0 = time.perf_counter()
        for x in _batches(images, batch, requests):
            runner.infer(torch.from_numpy(x))
        return Row("local", 1, list(runner.inference_times), time.perf_counter() - t0, batch * requests)


def bench_triton(protocol: str, url: str, model: str, images: np.ndarray, batch: int, requests: int,
                 concurrency: int) -> Row:
    """``requests`` in all, spread over ``concurrency`` clients, each a TritonRunner with its own
    connection; a benchmark with a failed request is no benchmark."""
    import torch

    from wrn_deploy.runners.triton_runner import TritonRunner

    per_client = max(1, requests // concurrency)
    latencies, errors = [], []
    start = threading.Barrier(concurrency + 1)

    def client(k: int):
        try:
            with TritonRunner(url, model, protocol) as runner:
                for x in _batches(images, batch, WARMUP, k * 7):
                    runner.infer(torch.from_numpy(x))
                runner.inference_times.clear()
                start.wait()
                for x in _batches(images, batch, per_client, k * 13):
                    runner.infer(torch.from_numpy(x))
                latencies.extend(runner.inference_times)
        except Exception as e:  # noqa: BLE001 - reported below, in the caller's thread
            errors.append(e)
            start.abort()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        from wrn_deploy.errors import UserError

        first = errors[0]
        why = first.format_message() if isinstance(first, UserError) else f"{type(first).__name__}: {first}"
        raise UserError(f"{len(errors)} of {concurrency} Triton clients failed ({protocol} {url}): {why}")
    return Row(f"triton-{protocol}", concurrency, latencies, seconds, batch * per_client * concurrency)


def machine() -> str:
    import os

    from wrn_deploy.card import versions

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    v = versions("onnxruntime", "tritonclient", "nvidia-pytriton", "tensorrt")
    return f"{cpu}, {os.cpu_count()} cores; " + ", ".join(f"{k} {x}" for k, x in v.items())


def markdown(title: str, rows: list, note: str) -> str:
    base = next((r["images_per_s"] for r in rows if r["path"] == "local"), None)
    lines = [f"### {title}", "", note, "", "| path | clients | p50 ms | p90 ms | p99 ms | images/s | vs local |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['images_per_s'] / base:.2f}x" if base else "-"
        lines.append(f"| {r['path']} | {r['concurrency']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['images_per_s']:.1f} | {ratio} |")
    return "\n".join(lines) + "\n"
