"""Which runtime executes the classifier's network on a CPU: PyTorch (TorchScript) or ONNX Runtime.

Both sit behind the eager module's forward call, ``forward(x) -> AMSOutput`` (logits, attention,
fusion weights) on torch tensors, so ``EmotionClassifier`` keeps its preprocessing, mirroring,
temperature and ensemble fusion whatever runs the convolutions. ``classifier.runtime=auto`` (the
default) takes ONNX Runtime when ``onnxruntime`` and ``onnx`` (for the export) are installed, as
``pip install`` does, and falls back to TorchScript when they are missing or the export fails.
The network is exported from the loaded checkpoint in memory at start-up (a few seconds, once
per checkpoint file and process), never downloaded or written anywhere; a checkpoint with INT8
ranges is then rewritten to 8-bit convolutions (``fer_ros.models.int8``, ``classifier.precision``).

The one operator the exporter lacks is AMS-CNN's antialiased bilinear downscaling of the
coarse pathways (``F.interpolate(antialias=True)``); it maps to ONNX ``Resize`` with
``antialias=1`` (opset 18). ONNX Runtime's filter differs from PyTorch's by float rounding
only: logits within about 0.02 of the TorchScript ones (``test/test_runtime.py``).
"""
from __future__ import annotations

import io
import os
import warnings
from typing import Callable

import numpy as np
import torch
from torch import nn

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import AMSOutput

RUNTIMES = ("auto", "torch", "onnxruntime")  # auto: onnxruntime when installed and the export works, else torch
_EXPORTED: dict[tuple, bytes] = {}  # (checkpoint file, its size and mtime) -> ONNX bytes, once per process
ONNX_OPSET = 18  # the first opset whose Resize has antialias


def checkpoint_key(path: str) -> tuple | None:
    """What identifies a checkpoint file's weights for the export cache: path, size, mtime."""
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        return None
    return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _antialiased_bilinear(g, x, output_size, align_corners, scale_factors):
    """ONNX symbolic of ``aten::_upsample_bilinear2d_aa`` (scale factors given, as AMS-CNN calls it)."""
    from torch.onnx import symbolic_helper

    scales = symbolic_helper._maybe_get_const(scale_factors, "fs")
    if symbolic_helper._is_value(scales) or scales is None:
        raise FerError("ONNX export: antialiased resize needs constant scale factors")
    roi = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
    sizes = g.op("Constant", value_t=torch.tensor([1.0, 1.0, *scales], dtype=torch.float32))
    return g.op("Resize", x, roi, sizes, mode_s="linear", antialias_i=1, coordinate_transformation_mode_s="half_pixel")


def export_onnx(model: nn.Module, in_chans: int, size: int) -> bytes:
    """The eval-mode ``model`` as an ONNX graph (batch size free), in memory."""
    from torch.onnx import register_custom_op_symbolic

    register_custom_op_symbolic("aten::_upsample_bilinear2d_aa", _antialiased_bilinear, ONNX_OPSET)
    example = torch.zeros(1, in_chans, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(model.eval(), (example,), buffer, input_names=["faces"],
                          output_names=list(AMSOutput._fields),
                          dynamic_axes={name: {0: "n"} for name in ("faces", *AMSOutput._fields)},
                          opset_version=ONNX_OPSET, dynamo=False)
    return buffer.getvalue()


def onnx_module(net: nn.Module, example: torch.Tensor, dynamic: dict, threads: int = 1, key: tuple | None = None) -> Callable:
    """Any small eval-mode network (MTCNN's P-, R- and O-Net) as an ONNX Runtime session behind its own
    call: ``net(x)`` -> the same tuple of tensors. ``dynamic``: the input's free axes, e.g. {0: "n"};
    ``key``: names fixed weights, so the export happens once per process."""
    import onnxruntime as ort

    graph = _EXPORTED.get(key) if key else None
    if graph is None:
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            names = [f"out{i}" for i in range(len(net(example)))]
            torch.onnx.export(net.eval(), (example,), buffer, input_names=["x"], output_names=names,
                              dynamic_axes={"x": dynamic}, opset_version=ONNX_OPSET, dynamo=False)
        graph = buffer.getvalue()
        if key:
            _EXPORTED[key] = graph
    session = ort.InferenceSession(graph, _options(threads), providers=["CPUExecutionProvider"])

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(o) for o in session.run(None, {"x": np.ascontiguousarray(x.cpu().numpy())}))
    return forward


def _options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def onnx_forward(model: nn.Module, in_chans: int, size: int, threads: int, key: tuple | None = None,
                 int8: dict | None = None) -> Callable:
    """An ONNX Runtime session of ``model`` wrapped as ``forward(x) -> AMSOutput``, as the module's own.

    ``key`` names the weights (see ``checkpoint_key``): a second pipeline on the same checkpoint
    reuses the export instead of repeating it (seconds on a small CPU). ``int8``: the checkpoint's
    activation ranges, to run the convolutions in 8 bits (see ``fer_ros.models.int8``).
    """
    if not onnxruntime_available():
        raise FerError("classifier.runtime=onnxruntime needs the onnxruntime and onnx packages: "
                       "pip install onnxruntime onnx, or set classifier.runtime=torch")
    import onnxruntime as ort

    graph = _EXPORTED.get(key) if key else None
    if graph is None:
        graph = export_onnx(model, in_chans, size)
        if key:
            _EXPORTED[key] = graph
    if int8 is not None:
        from fer_ros.models.int8 import quantised_graph

        int8_key = key + ("int8",) if key else None
        quantised = _EXPORTED.get(int8_key) if int8_key else None
        if quantised is None:
            quantised = quantised_graph(graph, int8)
            if int8_key:
                _EXPORTED[int8_key] = quantised
        graph = quantised
    session = ort.InferenceSession(graph, _options(threads), providers=["CPUExecutionProvider"])

    def forward(x: torch.Tensor) -> AMSOutput:
        outputs = session.run(None, {"faces": np.ascontiguousarray(x.float().cpu().numpy())})
        return AMSOutput(*(torch.from_numpy(o) for o in outputs))
    return forward
