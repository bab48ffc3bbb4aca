"""Small timing helpers shared by the benchmarks: warm up, then repeat within a time budget."""

import statistics
import time


def time_call(fn, budget_s: float = 3.0, min_reps: int = 3, warmup: int = 1) -> float:
    """Median seconds of one ``fn()`` call."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < budget_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return statistics.median(times)
