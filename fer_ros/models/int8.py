"""INT8 inference of the classifier on ONNX Runtime, from activation ranges the checkpoint carries.

A CPU with VNNI or AMX runs AMS-CNN's convolutions in 8-bit integers several times faster than in
float32 (docs/performance.md). Static quantisation needs the range of every activation; those are
measured once, on the model's own validation faces and their mirror images, when the checkpoint
is calibrated (``fer-ros calibrate``, and the end of ``fer-ros train``), and stored in it. At start-up
the exported float graph is rewritten with QuantizeLinear / DequantizeLinear pairs from those
ranges (weights per channel, activations per tensor): nothing is measured, downloaded or written.

Ranges are keyed by the tensor names of the exported graph. A different exporter can rename them;
``quantised_graph`` then refuses (``IncompatibleRanges``) instead of leaving layers in float.
"""
from __future__ import annotations

import inspect
import json
import os
import tempfile
from typing import Iterable

import numpy as np

from fer_ros.errors import FerError

METHOD = "minmax"  # plain min/max of each activation over the calibration faces
CALIBRATION_FACES = 1000  # at most this many validation faces (each with its mirror) set the ranges
QUANTISED_OPS = ("Conv", "Gemm", "MatMul")  # the layers that must end up in 8 bits for the speed-up


class IncompatibleRanges(FerError):
    """The checkpoint's ranges do not name this export's tensors (another torch or onnx version wrote them)."""


def int8_available() -> bool:
    """ONNX Runtime with the quantiser and a static quantisation that reads stored ranges."""
    try:
        from onnxruntime.quantization import quantize_static
    except ImportError:
        return False
    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


def _optimised(graph: bytes):
    """The graph after ONNX Runtime's basic rewrites (constants folded, no-ops removed) with shapes
    inferred: what the quantiser sees, so ranges and rewrites always name the same tensors."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="fer_ros_int8_") as tmp:
        path = os.path.join(tmp, "optimised.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = path
        ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        model = onnx.shape_inference.infer_shapes(onnx.load(path))
    # the two steps of ONNX Runtime's quantisation pre-processing; say so, as it does, so that
    # quantize_static does not log a warning asking for them on every start-up
    onnx.helper.set_model_props(model, {"onnx.quant.pre_process": "onnxruntime.quant"})
    return model


def _quantise(model, reader, cache: str, out: str) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(model, out, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=cache,
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})


def calibrate_ranges(graph: bytes, batches: Iterable[np.ndarray]) -> dict:
    """Activation ranges of the float ONNX ``graph`` over ``batches`` of model inputs [N, C, S, S]:
    a JSON-able dict to store in the checkpoint (see ``quantised_graph``)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"faces": np.ascontiguousarray(batch, np.float32)}

    if not int8_available():
        raise FerError("INT8 calibration needs ONNX Runtime's quantiser with stored ranges: pip install -U onnxruntime onnx")
    with tempfile.TemporaryDirectory(prefix="fer_ros_int8_") as tmp:
        cache = os.path.join(tmp, "ranges.json")
        _quantise(_optimised(graph), Reader(), cache, os.path.join(tmp, "int8.onnx"))
        with open(cache) as f:
            ranges = json.load(f)
    return {"method": METHOD, "ranges": json.dumps(ranges, separators=(",", ":"))}


def quantised_graph(graph: bytes, int8: dict) -> bytes:
    """The float ONNX ``graph`` with 8-bit convolutions and linear layers, from stored ranges."""
    import onnx

    if not int8_available():
        raise FerError("classifier.precision=int8 needs ONNX Runtime's quantiser with stored ranges: "
                       "pip install -U onnxruntime onnx, or set classifier.precision=fp32")
    if not isinstance(int8, dict) or int8.get("method") != METHOD or not isinstance(int8.get("ranges"), str):
        raise FerError(f"the checkpoint's INT8 ranges are malformed (expected method {METHOD!r} and a ranges string); "
                       "recalibrate it with `fer-ros calibrate`")
    model = _optimised(graph)
    with tempfile.TemporaryDirectory(prefix="fer_ros_int8_") as tmp:
        cache, out = os.path.join(tmp, "ranges.json"), os.path.join(tmp, "int8.onnx")
        with open(cache, "w") as f:
            f.write(int8["ranges"])
        try:
            _quantise(model, None, cache, out)
        except (KeyError, ValueError, TypeError) as exc:
            raise IncompatibleRanges(f"the checkpoint's INT8 ranges do not fit this export ({type(exc).__name__}: {exc})") from None
        quantised = onnx.load(out)
    left = float_layers(quantised)
    if left:
        raise IncompatibleRanges(f"{len(left)} layers would stay in float (e.g. {left[0]}): the checkpoint's INT8 ranges "
                                 "name another export's tensors; recalibrate it with `fer-ros calibrate`")
    return quantised.SerializeToString()


def float_layers(model) -> list[str]:
    """Names of convolutions and linear layers whose input is not dequantised from 8 bits."""
    made_by = {out: node.op_type for node in model.graph.node for out in node.output}
    return [node.name or node.op_type for node in model.graph.node
            if node.op_type in QUANTISED_OPS and made_by.get(node.input[0]) != "DequantizeLinear"]


PRECISIONS = ("auto", "fp32", "int8")


def use_int8(precision: str, int8: dict | None, path: str, on_onnxruntime: bool) -> bool:
    """Whether a checkpoint (its ``int8`` ranges, its ``path``) runs in 8 bits: ``int8`` = yes or a clear
    error, ``fp32`` = no, ``auto`` = when it carries ranges and ONNX Runtime runs it on a CPU."""
    if precision not in PRECISIONS:
        raise FerError(f"unknown classifier precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return False
    if precision == "auto":
        return on_onnxruntime and int8 is not None and int8_available()
    if not on_onnxruntime:
        raise FerError("classifier.precision=int8 runs on ONNX Runtime on a CPU; set classifier.runtime to auto or "
                       "onnxruntime and a CPU device, or classifier.precision=fp32")
    if int8 is None:
        raise FerError(f"{path} carries no INT8 ranges; add them with `fer-ros calibrate --weights {path} --data DATA` "
                       "or set classifier.precision=fp32")
    return True
