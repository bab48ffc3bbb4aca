"""ONNX Runtime CPU throughput with spin-waiting on and off, on an idle and on a loaded machine.

    python benchmarks/ort_threading.py [--arch wrn-16-4] [--batches 64,1] [--rounds 3]

A random-weight model is exported to FP32 ONNX and quantized to the CPU form (U8S8, min-max on 64
synthetic images). Each setting is timed in interleaved rounds (median of the rounds), first with
the machine as it is ("idle"), then with one busy process per core but one ("loaded": a shared
machine, a CI runner, a server that also decodes images). Ratios compare settings of one round.
"""

import argparse
import multiprocessing
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common import machine_report
from int8_speed import models
from timing import time_call
from wrn_deploy.runners.ort_runner import OrtRunner

SETTINGS = {"spin on": True, "spin off": False}


def _busy() -> None:
    while True:
        pass


def _round(paths: dict, batch: int, budget: float) -> dict:
    x = torch.rand(batch, 3, 32, 32)
    out = {}
    for model, path in paths.items():
        for name, spin in SETTINGS.items():
            with OrtRunner(path, spin=spin) as runner:
                out[(model, name)] = batch / time_call(lambda r=runner: r.infer(x), budget)
    return out


def measure(paths: dict, batch: int, rounds: int, budget: float) -> dict:
    runs = [_round(paths, batch, budget) for _ in range(rounds)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="wrn-16-4")
    ap.add_argument("--batches", default="64,1")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=2.0)
    args = ap.parse_args()
    print(machine_report())
    with tempfile.TemporaryDirectory() as tmp:
        built = models(args.arch, Path(tmp), forms=("INT8 cpu (U8S8)",))
        paths = {"FP32": built["FP32"], "INT8 cpu": built["INT8 cpu (U8S8)"]}
        print(f"\n{args.arch}, ONNX Runtime CPU, ONNX Runtime's default thread count; images/s, median of "
              f"{args.rounds} interleaved rounds")
        print(f"{'machine':8} {'batch':>5} {'model':9} {'spin on':>9} {'spin off':>9} {'off/on':>7}")
        for load in ("idle", "loaded"):
            workers = []
            if load == "loaded":
                ctx = multiprocessing.get_context("spawn")
                workers = [ctx.Process(target=_busy, daemon=True) for _ in range(max(1, (multiprocessing.cpu_count()
                                                                                        - 1)))]
                for w in workers:
                    w.start()
            try:
                for batch in map(int, args.batches.split(",")):
                    r = measure(paths, batch, args.rounds, args.budget)
                    for model in paths:
                        on, off = r[(model, "spin on")], r[(model, "spin off")]
                        print(f"{load:8} {batch:5} {model:9} {on:9.1f} {off:9.1f} {off / on:7.2f}")
            finally:
                for w in workers:
                    w.terminate()


if __name__ == "__main__":
    main()
