"""Calibration ranges in bounded memory.

ONNX Runtime's histogram calibrators keep every intermediate output of every calibration image
before they histogram anything (measured: 17-18 GB for WRN-28-10 on 512 CIFAR images). Here each
batch of images goes through the model and its activations are reduced before the next batch runs,
so memory follows the batch, not the number of images.

The histogram methods (entropy, percentile) take two passes: the first finds each tensor's range,
the second adds every batch into a histogram whose bins that range fixes. A histogram with fixed
bins is a sum over images, so the result is the histogram ONNX Runtime builds when it is handed all
images at once (same bins, same counts), and its own ``HistogramCollector`` turns it into ranges.
Min-max needs one pass: ONNX Runtime's calibrator reduces each batch to a min and a max inside the
graph, so it is already bounded once the images arrive a batch at a time.

The image-percentile method also takes one pass: each image's own minimum and maximum of a tensor
(two numbers an image), and at the end a high percentile of them over the images
(``limits.CALIB_IMAGE_PERCENTILE``, rounded towards the middle). The pooled percentile drops the
rarest values, so one image with more large values than its tail holds decides the range for every
image; this one clips about the top 2% of the images (at least one), however far out they lie.
"""

from collections.abc import Callable, Iterator

import numpy as np

BATCH_BYTES = 256 << 20  # activations one batch may hold, all calibrated tensors together
MAX_BATCH = 64


def batch_size(per_image_bytes: int) -> int:
    """Images per batch so that one batch's activations stay near ``BATCH_BYTES``."""
    return int(max(1, min(MAX_BATCH, BATCH_BYTES // max(per_image_bytes, 1))))


def histogram_ranges(calibrator, batches: Callable[[], Iterator[np.ndarray]], progress: bool = False):
    """``TensorsData`` for an ONNX Runtime histogram calibrator (entropy or percentile, made by
    ``create_calibrator``), from ``batches()``: a fresh iterator of float32 NCHW batches per call."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, EntropyCalibrater, TensorsData

    collector = histograms(calibrator, batches, progress)
    method = CalibrationMethod.Entropy if isinstance(calibrator, EntropyCalibrater) else CalibrationMethod.Percentile
    return TensorsData(method, collector.compute_collection_result())


def image_percentile_ranges(calibrator, batches: Iterator[np.ndarray], percentile: float, progress: bool = False):
    """``TensorsData`` (min-max form): for each calibrated tensor, the ``percentile``-th percentile over
    the images of each image's maximum, and the matching low percentile of their minima; symmetric
    calibrators widen it to (-m, m) as ONNX Runtime's min-max calibrator does. ``calibrator`` is a
    histogram calibrator: its augmented model exposes each calibrated tensor whole."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData

    lows, highs, sizes = {}, {}, []

    def counted(batches):
        for x in batches:
            sizes.append(len(x))
            yield x

    for outs in _runner(calibrator)(counted(batches), progress, "calibrating: ranges"):
        for name, a in outs.items():
            lo, hi = _per_image_extremes(name, a, sizes[-1])
            lows.setdefault(name, []).append(lo)
            highs.setdefault(name, []).append(hi)
    ranges = {}
    for name in lows:
        # Rounded towards the middle, never interpolated: the most extreme image never sets a range.
        lo = float(np.percentile(np.concatenate(lows[name]), 100 - percentile, method="higher"))
        hi = float(np.percentile(np.concatenate(highs[name]), percentile, method="lower"))
        if calibrator.symmetric:
            lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
        ranges[name] = (np.array([lo], dtype=np.float32), np.array([hi], dtype=np.float32))
    return TensorsData(CalibrationMethod.MinMax, ranges)


def _per_image_extremes(name: str, a: np.ndarray, images: int) -> tuple:
    """Each of the batch's ``images`` own minimum and maximum of tensor ``a``. A tensor without the
    batch axis (a scalar, a constant's output) is the same for every image: its extremes, repeated."""
    if a.size == 0:
        return np.zeros(images, a.dtype), np.zeros(images, a.dtype)
    if a.ndim == 0 or a.shape[0] != images:
        lo, hi = np.full(images, a.min()), np.full(images, a.max())
    else:
        flat = a.reshape(images, -1)
        lo, hi = flat.min(axis=1), flat.max(axis=1)
    _check_finite(name, lo.min(), hi.max())
    return lo, hi


def histograms(calibrator, batches: Callable[[], Iterator[np.ndarray]], progress: bool = False):
    """ONNX Runtime's ``HistogramCollector`` holding the histograms of every calibrated tensor."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    absolute = calibrator.method == "percentile" and calibrator.symmetric
    run = _runner(calibrator)
    # Pass 1: each tensor's extremes (of |x| for the symmetric percentile, else of x).
    ranges = {}
    for outs in run(batches(), progress, "calibrating: ranges"):
        for name, a in outs.items():
            _widen(ranges, name, np.abs(a) if absolute else a)
    bins = {n: _bin_range(lo, hi, absolute) for n, (lo, hi) in ranges.items()}
    # Pass 2: every batch into histograms whose bins pass 1 fixed.
    counts, edges, raw = {}, {}, {}
    for outs in run(batches(), progress, "calibrating: histograms"):
        for name, a in outs.items():
            hist, edges[name] = np.histogram(np.abs(a) if absolute else a, calibrator.num_bins, range=bins[name])
            counts[name] = counts.get(name, 0) + hist
            if absolute:  # ONNX Runtime records the raw extremes beside the histogram of |x|
                _widen(raw, name, a)
    collector = HistogramCollector(calibrator.method, calibrator.symmetric, calibrator.num_bins,
                                   calibrator.num_quantized_bins, calibrator.percentile, calibrator.scenario)
    for name, (lo, hi) in ranges.items():
        extra = raw[name] if absolute else (lo, hi, bins[name][1])
        collector.histogram_dict[name] = (counts[name], edges[name], *extra)
    return collector


def _widen(ranges: dict, name: str, a: np.ndarray) -> None:
    lo, hi = _extremes(a)
    _check_finite(name, lo, hi)
    if name in ranges:
        lo, hi = min(ranges[name][0], lo), max(ranges[name][1], hi)
    ranges[name] = (lo, hi)


def _check_finite(name: str, lo, hi) -> None:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        from wrn_deploy.errors import UserError

        raise UserError(f"calibration: tensor {name} has {'NaN' if np.isnan([lo, hi]).any() else 'infinite'} "
                        "values on these images; check the model and the images")


def _extremes(a: np.ndarray) -> tuple:
    if a.size == 0:
        zero = np.array(0, dtype=a.dtype)
        return zero, zero
    return a.min(), a.max()  # NaN propagates, and is refused


def _bin_range(lo, hi, absolute: bool) -> tuple:
    """The range ONNX Runtime's one-shot histogram takes: the data's own extremes for |x|, or
    (-t, t) with t the largest magnitude (as a 0-d array of the data's type) for raw values."""
    if absolute:
        return lo, hi
    threshold = np.array(max(abs(lo), abs(hi)), dtype=np.asarray(lo).dtype)
    return -threshold, threshold


def _runner(calibrator):
    """A function that runs batches through the calibrator's augmented model and yields
    {tensor: output} for the tensors it calibrates."""
    from tqdm import tqdm

    session = calibrator.infer_session
    input_name = session.get_inputs()[0].name
    wanted = [o.name for o in session.get_outputs() if o.name in set(calibrator.tensors_to_calibrate)]

    def run(batches, progress: bool, desc: str):
        with tqdm(batches, desc=desc, unit="batch", disable=not progress, leave=False) as bar:
            for x in bar:  # only the calibrated outputs are copied out
                yield dict(zip(wanted, session.run(wanted, {input_name: x})))
    return run


def per_image_bytes(calibrator, first_image: np.ndarray) -> int:
    """Bytes of calibrated activations one image produces, measured on ``first_image`` (1 x C x H x W)."""
    session = calibrator.infer_session
    outs = session.run(None, {session.get_inputs()[0].name: first_image})
    names = [o.name for o in session.get_outputs()]
    wanted = set(calibrator.tensors_to_calibrate)
    return sum(a.nbytes for n, a in zip(names, outs) if n in wanted)


def tensor_chunks(images):
    """``chunks(n)`` over images already in memory (a float tensor or array in [0, 1])."""
    def chunks(n: int):
        for i in range(0, len(images), n):
            x = images[i:i + n]
            yield np.ascontiguousarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
    return chunks
