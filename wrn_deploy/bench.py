"""Latency and throughput of an artifact: locally through its runner, and through a real Triton
server over HTTP and gRPC at several client concurrencies, on real images, after a warm-up.

Every request carries ``batch`` images; latency is per request (p50/p90/p99, milliseconds) and
throughput is images per second over the timed part.

``measure`` (the ``bench`` command) runs the paths interleaved: each of ``rounds`` rounds times a
share of every row (local, then each protocol and client count, the order rotated from round to
round), so a change of load on the machine lands on every row alike, not on whichever ran last.
Triton's load comes from client processes (``ClientPool``): Python threads in the benchmarking
process would share its interpreter lock, and under-report the server. Where NVIDIA's
``perf_analyzer`` is on PATH it measures every Triton row too, for a side-by-side column.
"""

import platform
import threading
import time
from dataclasses import dataclass, field

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


@dataclass
class Tally:
    """One row's timed requests, added up over the rounds."""

    path: str
    concurrency: int
    latencies: list = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0

    def add(self, latencies: list, seconds: float, images: int) -> None:
        self.latencies += latencies
        self.seconds += seconds
        self.images += images

    def row(self) -> "Row":
        return Row(self.path, self.concurrency, self.latencies, self.seconds, self.images)


def _batches(images: np.ndarray, batch: int, count: int, offset: int = 0) -> list:
    n = len(images)
    return [images[(offset + i * batch + np.arange(batch)) % n] for i in range(count)]


def bench_local(runner, images: np.ndarray, batch: int, requests: int) -> Row:
    """``requests`` timed calls of ``batch`` images through ``runner``, after a warm-up."""
    with runner:
        for x in _batches(images, batch, WARMUP):
            runner.infer(x)
        runner.inference_times.clear()
        t0 = time.perf_counter()
        for x in _batches(images, batch, requests):
            runner.infer(x)
        return Row("local", 1, list(runner.inference_times), time.perf_counter() - t0, batch * requests)


def bench_triton(protocol: str, url: str, model: str, images: np.ndarray, batch: int, requests: int,
                 concurrency: int) -> Row:
    """``requests`` in all, spread over ``concurrency`` clients, each a TritonRunner with its own
    connection; a benchmark with a failed request is no benchmark."""
    from wrn_deploy.runners.triton_runner import TritonRunner

    per_client = max(1, requests // concurrency)
    latencies, errors = [], []
    start = threading.Barrier(concurrency + 1)

    def client(k: int):
        try:
            with TritonRunner(url, model, protocol) as runner:
                for x in _batches(images, batch, WARMUP, k * 7):
                    runner.infer(x)
                runner.inference_times.clear()
                start.wait()
                for x in _batches(images, batch, per_client, k * 13):
                    runner.infer(x)
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


def _client(conn, urls: dict, model: str, images: np.ndarray, batch: int, k: int) -> None:
    """One client process: a connection per protocol, a warm-up, then each ``(protocol, count)`` it
    is sent is timed and answered with (start, end, latencies); ``None`` ends it. Errors go back as
    one line. Imports only NumPy and tritonclient (no torch), so it starts fast."""
    import importlib

    from wrn_deploy.data.preprocess import to_pixels

    try:
        from tritonclient.utils import triton_to_np_dtype

        clients = {}
        for protocol, url in urls.items():
            lib = importlib.import_module(f"tritonclient.{protocol}")
            client = lib.InferenceServerClient(url)
            meta = client.get_model_metadata(model, **({"as_json": True} if protocol == "grpc" else {}))
            inp, out = meta["inputs"][0], meta["outputs"][0]
            dtype = np.dtype(triton_to_np_dtype(inp["datatype"]))
            # images are in [0, 1]; a raw-pixel (UINT8) input takes them as 0-255
            x = to_pixels(images) if dtype == np.uint8 else images.astype(dtype)
            clients[protocol] = (lib, client, inp, out, x)
        sent = {p: 0 for p in clients}

        def once(protocol: str) -> None:
            lib, client, inp, out, x = clients[protocol]
            chunk = x[(k * 7 + sent[protocol] * batch + np.arange(batch)) % len(x)]
            sent[protocol] += 1
            request = lib.InferInput(inp["name"], list(chunk.shape), inp["datatype"])
            request.set_data_from_numpy(np.ascontiguousarray(chunk))
            client.infer(model, [request], outputs=[lib.InferRequestedOutput(out["name"])])

        for protocol in clients:
            for _ in range(WARMUP):
                once(protocol)
        conn.send(("ready", None))
        while (job := conn.recv()) is not None:
            protocol, count = job
            latencies, start = [], time.perf_counter()
            for _ in range(count):
                t0 = time.perf_counter()
                once(protocol)
                latencies.append(time.perf_counter() - t0)
            conn.send(("done", (start, time.perf_counter(), latencies)))
    except Exception as e:  # noqa: BLE001 - sent to the parent, which reports it in one line
        why = e.message() if hasattr(e, "message") and callable(e.message) else str(e)
        conn.send(("error", f"{type(e).__name__}: {why}".splitlines()[0]))


class ClientPool:
    """``size`` client processes, each with its own HTTP and gRPC connections, kept for every round.
    ``run(protocol, clients, per_client)`` starts the first ``clients`` of them together and returns
    their latencies and the wall time from the first start to the last finish (``perf_counter`` is
    the system's monotonic clock, the same in every process)."""

    def __init__(self, urls: dict, model: str, images: np.ndarray, batch: int, size: int):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding a server and threads
        self.conns, self.procs = [], []
        try:
            for k in range(size):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_client, args=(child, urls, model, images, batch, k), daemon=True)
                proc.start()
                self.conns.append(parent)
                self.procs.append(proc)
            self._collect(self.conns, "started")
        except BaseException:
            self.close()
            raise

    def _collect(self, conns: list, what: str) -> list:
        from wrn_deploy.errors import UserError

        answers = []
        for conn in conns:
            try:
                answers.append(conn.recv())
            except EOFError:
                answers.append(("error", "the client process died"))
        failed = [a[1] for a in answers if a[0] == "error"]
        if failed:
            raise UserError(f"{len(failed)} of {len(conns)} Triton client processes failed ({what}): {failed[0]}")
        return [a[1] for a in answers]

    def run(self, protocol: str, clients: int, per_client: int) -> tuple:
        conns = self.conns[:clients]
        for conn in conns:
            conn.send((protocol, per_client))
        done = self._collect(conns, f"{protocol}, {clients} clients")
        latencies = [t for _, _, lat in done for t in lat]
        return latencies, max(end for _, end, _ in done) - min(start for start, _, _ in done)

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()


def measure(runner, images: np.ndarray, batch: int, requests: int, rounds: int, urls: dict | None = None,
            model: str = "", levels: tuple = (1,), beside=None) -> list:
    """Every row, interleaved in ``rounds`` rounds of ``requests / rounds`` timed requests each:
    the local runner, and (with ``urls``: protocol -> host:port of a server serving ``model``) each
    protocol at each client count in ``levels``. ``beside(protocol, clients, requests)``, if given,
    measures each Triton row another way right after it in every round (perf_analyzer); its
    answers, combined over the rounds, go in the row under ``perf_analyzer``. Returns the rows'
    dicts, local first."""
    share = max(1, requests // rounds)
    keys = [("local", 1)] + [(f"triton-{p}", c) for p in (urls or {}) for c in levels]
    tallies = {key: Tally(*key) for key in keys}
    others: dict = {key: [] for key in keys}
    pool = ClientPool(urls, model, images, batch, max(levels)) if urls else None
    try:
        with runner:
            for x in _batches(images, batch, WARMUP):
                runner.infer(x)
            for r in range(rounds):
                for path, clients in keys[r % len(keys):] + keys[:r % len(keys)]:  # rotated each round
                    if path == "local":
                        runner.inference_times.clear()
                        t0 = time.perf_counter()
                        for x in _batches(images, batch, share, r * share):
                            runner.infer(x)
                        tallies[(path, 1)].add(list(runner.inference_times), time.perf_counter() - t0, batch * share)
                    else:
                        per_client = max(1, share // clients)
                        latencies, seconds = pool.run(path.removeprefix("triton-"), clients, per_client)
                        tallies[(path, clients)].add(latencies, seconds, batch * per_client * clients)
                        if beside is not None:
                            others[(path, clients)].append(beside(path.removeprefix("triton-"), clients, share))
    finally:
        if pool is not None:
            pool.close()
    rows = [tallies[key].row().to_dict() for key in keys]
    for row, key in zip(rows, keys):
        if others[key]:
            row["perf_analyzer"] = combine(others[key])
    return rows


def combine(runs: list) -> dict | None:
    """perf_analyzer's rounds as one: mean images/s, median p50 and p99; the first error if any failed."""
    if any(r is None for r in runs):
        return None
    failed = [r["error"] for r in runs if "error" in r]
    if failed:
        return {"error": failed[0]}
    return {"images_per_s": round(float(np.mean([r["images_per_s"] for r in runs])), 1),
            "p50_ms": round(float(np.median([r["p50_ms"] for r in runs])), 3),
            "p99_ms": round(float(np.median([r["p99_ms"] for r in runs])), 3), "rounds": len(runs)}


def perf_analyzer(protocol: str, url: str, model: str, batch: int, concurrency: int, requests: int) -> dict | None:
    """NVIDIA's perf_analyzer on the same model, protocol, batch and client count, where it is on
    PATH (None elsewhere): its images/s and p50/p99 latency, from its CSV report, or the last line of
    its error."""
    import csv
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which("perf_analyzer")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="wrn-deploy-pa-") as tmp:
        report = f"{tmp}/pa.csv"
        # Its stability rule (3 windows within 10%, by default) is rarely met on a small shared CPU;
        # 25% still rejects a window that another job disturbed badly.
        cmd = [exe, "-m", model, "-u", url, "-i", protocol, "-b", str(batch),
               "--concurrency-range", f"{concurrency}:{concurrency}", "--measurement-mode", "count_windows",
               "--measurement-request-count", str(max(requests, 20)), "--stability-percentage", "25",
               "--max-trials", "20", "-f", report]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:  # the row says so; bench's own figures stand
            last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            return {"error": last[0]}
        with open(report) as f:
            row = next(csv.DictReader(f))
    return {"images_per_s": round(float(row["Inferences/Second"]), 1),
            "p50_ms": round(float(row["p50 latency"]) / 1000, 3), "p99_ms": round(float(row["p99 latency"]) / 1000, 3)}


def machine() -> str:
    import os

    from wrn_deploy.card import versions

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from wrn_deploy.cpuinfo import instruction_set

    v = versions("onnxruntime", "openvino", "tritonclient", "nvidia-pytriton", "tensorrt")
    return f"{cpu}, {os.cpu_count()} cores, {instruction_set()}; " + ", ".join(f"{k} {x}" for k, x in v.items())


def markdown(title: str, rows: list, note: str) -> str:
    base = next((r["images_per_s"] for r in rows if r["path"] == "local"), None)
    pa = any(r.get("perf_analyzer") for r in rows)
    extra = " perf_analyzer images/s | perf_analyzer p50 ms | bench / perf_analyzer |" if pa else ""
    head = "| path | clients | p50 ms | p90 ms | p99 ms | images/s | vs local |"
    lines = [f"### {title}", "", note, "", head + extra,
             "|---|---|---|---|---|---|---|" + ("---|---|---|" if pa else "")]
    for r in rows:
        ratio = f"{r['images_per_s'] / base:.2f}x" if base else "-"
        line = (f"| {r['path']} | {r['concurrency']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['images_per_s']:.1f} | {ratio} |")
        if pa:
            p = r.get("perf_analyzer")
            if p and "error" in p:
                line += f" failed: {p['error']} | - | - |"
            else:
                line += (f" {p['images_per_s']:.1f} | {p['p50_ms']:.2f} | {r['images_per_s'] / p['images_per_s']:.2f} |"
                         if p else " - | - | - |")
        lines.append(line)
    return "\n".join(lines) + "\n"
