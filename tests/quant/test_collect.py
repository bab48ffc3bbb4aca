"""Calibration in bounded memory (quant/collect.py): the batch-at-a-time ranges equal ONNX Runtime's
one-shot ranges exactly, and peak memory does not grow with the number of calibration images."""

import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from wrn_deploy.quant import collect, qdq


def _model(path):
    """Conv -> Relu -> Conv -> Add(residual): the shapes of a WRN block, small enough for 2,048 images."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "w2")
    w3 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 1, 1)).astype(np.float32), "w3")
    nodes = [helper.make_node("Conv", ["images", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Conv", ["images", "w3"], ["s"], name="shortcut"),
             helper.make_node("Add", ["c2", "s"], ["logits"], name="add")]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                             ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 8, 16, 16])],
                              [w1, w2, w3])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def _images(n, seed=1):
    # Mixed scales, so the tensors' extremes come from different batches.
    rng = np.random.default_rng(seed)
    return (rng.random((n, 3, 16, 16)) * rng.random((n, 1, 1, 1)) * 2).astype(np.float32)


def _calibrator(model, spec, tmp):
    from onnxruntime.quantization.calibrate import create_calibrator

    extra = {"symmetric": spec.target == "tensorrt", "num_bins": 2048}
    if spec.method == "entropy":
        extra["num_quantized_bins"] = 128
    else:
        extra["percentile"] = spec.percentile
    return create_calibrator(model, None, augmented_model_path=str(tmp / f"aug-{spec.target}-{spec.method}.onnx"),
                             calibrate_method=qdq._method(spec.method), extra_options=extra)


@pytest.mark.parametrize("target,method", [("tensorrt", "percentile"), ("cpu", "percentile"),
                                           ("tensorrt", "entropy"), ("cpu", "entropy")])
def test_batched_ranges_equal_onnxruntime_one_shot_ranges(tmp_path, target, method):
    model = _model(tmp_path / "m.onnx")
    spec = qdq.QuantSpec(target, method)
    x = _images(96)

    one_shot = _calibrator(model, spec, tmp_path)
    one_shot.collect_data(_reader(x, 96))  # every image at once, as ORT's own calibrator keeps them
    if method == "percentile":  # (the entropy search takes seconds a tensor; its input is compared below)
        expected = one_shot.compute_data()
        got = collect.histogram_ranges(_calibrator(model, spec, tmp_path),
                                       lambda: iter([x[i:i + 7] for i in range(0, 96, 7)]))  # uneven batches
        assert set(got.keys()) == set(expected.keys()) and len(got.keys()) >= 5
        for name in expected.keys():
            assert tuple(got[name].range_value) == tuple(expected[name].range_value), name
    # Same bins and counts, and the same extremes beside them.
    hist = collect.histograms(_calibrator(model, spec, tmp_path), lambda: iter([x[:50], x[50:]])).histogram_dict
    assert hist.keys() == one_shot.collector.histogram_dict.keys()
    for name, want in one_shot.collector.histogram_dict.items():
        assert len(hist[name]) == len(want)
        for a, b in zip(hist[name], want):
            assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype, name


def _reader(x, batch):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(range(0, len(x), batch))

        def get_next(self):
            i = next(self.it, None)
            return None if i is None else {"images": x[i:i + batch]}
    return Reader()


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _streamed(n, batch=32):
    """A fresh iterator of ``n`` images, made a batch at a time (nothing holds them all)."""
    return lambda: (_images(min(batch, n - i), seed=i) for i in range(0, n, batch))


def test_peak_memory_is_flat_from_128_to_2048_images(tmp_path):
    model = _model(tmp_path / "m.onnx")
    spec = qdq.QuantSpec("tensorrt", "percentile")
    peaks = {n: _peak(lambda n=n: collect.histogram_ranges(_calibrator(model, spec, tmp_path), _streamed(n)))
             for n in (128, 2048)}
    assert peaks[2048] < 1.25 * peaks[128], peaks
    # The measurement can tell: ONNX Runtime's one-shot collection grows with the images it keeps.
    def one_shot(n):
        cal = _calibrator(model, spec, tmp_path)
        cal.collect_data(_reader(np.concatenate(list(_streamed(n)())), 32))
    grown = {n: _peak(lambda n=n: one_shot(n)) for n in (128, 2048)}
    assert grown[2048] > 4 * grown[128], grown


@pytest.mark.parametrize("target,method", [("tensorrt", "minmax"), ("cpu", "minmax"), ("tensorrt", "percentile"),
                                           ("cpu", "percentile"), ("tensorrt", "image-percentile"),
                                           ("cpu", "image-percentile")])
def test_calibrate_writes_a_range_for_every_calibrated_tensor(tmp_path, target, method):
    from onnxruntime.quantization.calibrate import load_tensors_data

    model = _model(tmp_path / "m.onnx")
    spec = qdq.QuantSpec(target, method, placement="conv")
    qdq.calibrate(model, collect.tensor_chunks(_images(40)), spec, tmp_path / "ranges.json")
    ranges = load_tensors_data(tmp_path / "ranges.json")
    assert {"images", "c2"} <= set(ranges.keys())
    for name, data in ranges.items():
        lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in data.range_value)
        assert lo <= hi and np.isfinite([lo, hi]).all(), name


def _ranges(model, method, x, target="tensorrt") -> dict:
    from onnxruntime.quantization.calibrate import load_tensors_data

    out = model.parent / f"r-{method}-{target}-{len(x)}.json"
    qdq.calibrate(model, collect.tensor_chunks(x), qdq.QuantSpec(target, method, placement="conv"), out)
    return {n: tuple(float(np.asarray(v).reshape(-1)[0]) for v in d.range_value)
            for n, d in load_tensors_data(out).items()}


def _one_image_ranges(model, x, tmp) -> list:
    """ONNX Runtime's own min-max calibrator run on each image alone: [{tensor: (min, max)}]."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    out = []
    for i in range(len(x)):
        cal = create_calibrator(model, None, augmented_model_path=str(tmp / "aug-one.onnx"),
                                calibrate_method=CalibrationMethod.MinMax)
        cal.collect_data(_reader(x[i:i + 1], 1))
        out.append({n: tuple(float(np.asarray(v).reshape(-1)[0]) for v in d.range_value)
                    for n, d in cal.compute_data().items()})
    return out


@pytest.mark.parametrize("target", ["tensorrt", "cpu"])
def test_image_percentile_is_a_percentile_of_each_images_own_extremes(tmp_path, target):
    from wrn_deploy.limits import CALIB_IMAGE_PERCENTILE

    model = _model(tmp_path / "m.onnx")
    x = _images(30)
    per_image = _one_image_ranges(model, x, tmp_path)
    got = _ranges(model, "image-percentile", x, target)
    assert {"images", "c2"} <= set(got) and set(got) <= set(per_image[0])
    k = int(CALIB_IMAGE_PERCENTILE / 100 * (len(x) - 1))  # the image's rank, rounded towards the middle
    assert k < len(x) - 1
    for name, (lo, hi) in got.items():
        want_lo = sorted(r[name][0] for r in per_image)[len(x) - 1 - k]
        want_hi = sorted(r[name][1] for r in per_image)[k]
        if target == "tensorrt":
            want_lo, want_hi = -max(abs(want_lo), abs(want_hi)), max(abs(want_lo), abs(want_hi))
        assert np.allclose((lo, hi), (want_lo, want_hi), rtol=1e-6), name


def test_one_outlying_image_sets_the_percentile_but_not_the_image_percentile(tmp_path):
    model = _model(tmp_path / "m.onnx")
    x = _images(40)
    odd = x.copy()
    odd[7] *= 60  # one image whose activations are far out of line with the others'
    widest = _ranges(model, "minmax", x)["c2"][1]  # the widest range of the 40 ordinary images
    assert _ranges(model, "image-percentile", odd)["c2"][1] <= widest
    # Its large values outnumber the top 0.01% that the pooled percentile drops.
    assert _ranges(model, "percentile", odd)["c2"][1] > 20 * _ranges(model, "percentile", x)["c2"][1]


def test_a_tensor_without_the_batch_axis_is_the_same_for_every_image():
    batch = np.arange(24, dtype=np.float32).reshape(3, 8)  # three images' own values
    lo, hi = collect._per_image_extremes("t", batch, 3)
    assert lo.tolist() == [0, 8, 16] and hi.tolist() == [7, 15, 23]
    for shared in (np.float32(2.5), np.array([-1.0, 4.0], dtype=np.float32)):  # a scalar; a constant's output
        lo, hi = collect._per_image_extremes("t", shared, 3)
        assert lo.tolist() == [shared.min()] * 3 and hi.tolist() == [shared.max()] * 3
    with pytest.raises(Exception, match="NaN"):
        collect._per_image_extremes("t", np.array([[1.0, np.nan]], dtype=np.float32), 1)
