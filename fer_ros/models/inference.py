"""Classify aligned faces: every face of a frame in one batch, one or several checkpoints.

Several checkpoints form an ensemble fused by the sum rule (mean of probabilities) or the
product rule (normalised product), as in the "deep fusion" paper. The first member's classes
are the ensemble's; the others are matched to them by meaning, so a FER2013 model and a FER+
model can vote together. Each keeps its own preprocessing, so members trained differently mix.
"""
from __future__ import annotations

import copy
import logging
import warnings
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from fer_ros.emotions import match_classes
from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import AMSOutput
from fer_ros.models.checkpoint import LoadedModel, load_checkpoint, use_mirror
from fer_ros.models.int8 import use_int8
from fer_ros.models.preprocess import to_model_input
from fer_ros.models.runtime import RUNTIMES, checkpoint_key, onnx_forward, onnxruntime_available
from fer_ros.types import Classification

FUSION_RULES = ("sum", "product")
log = logging.getLogger(__name__)


def fuse(probabilities: list[np.ndarray], rule: str) -> np.ndarray:
    """Combine [N, C] probability arrays from ensemble members."""
    if rule == "sum":
        return np.mean(probabilities, axis=0)
    if rule == "product":  # in log space, so tiny probabilities do not underflow
        log = np.sum([np.log(np.clip(p, 1e-12, 1.0)) for p in probabilities], axis=0)
        log -= log.max(axis=1, keepdims=True)
        out = np.exp(log)
        return out / out.sum(axis=1, keepdims=True)
    raise FerError(f"unknown fusion rule '{rule}'; choose one of {', '.join(FUSION_RULES)}")


def class_map(member: LoadedModel, class_names: list[str], first: str) -> np.ndarray | None:
    """Column of ``class_names`` for each of ``member``'s classes (-1: dropped), None when they are the same.

    Members of an ensemble may be trained on different label sets (FER2013's seven, FER+'s eight):
    classes are matched by meaning (``anger`` = ``angry``), a class the first member lacks is dropped
    and the rest renormalised, and a class only the first member has gets no vote from this one.
    """
    if member.class_names == class_names:
        return None
    index = [-1 if i is None else i for i in match_classes(member.class_names, class_names)]
    if sum(i >= 0 for i in index) < 2:
        raise FerError(f"ensemble members share too few classes: {member.path} has {member.class_names}, "
                       f"{first} has {class_names}")
    return np.array(index)


def to_classes(probs: np.ndarray, mapping: np.ndarray | None, n: int) -> np.ndarray:
    """[N, C_member] probabilities -> [N, C] in the ensemble's classes (see ``class_map``)."""
    if mapping is None:
        return probs
    out = np.zeros((len(probs), n), probs.dtype)
    kept = mapping >= 0
    out[:, mapping[kept]] = probs[:, kept]
    return out / np.maximum(out.sum(1, keepdims=True), 1e-12)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d that follows a Conv2d in a Sequential into that conv, in place.

    Exact at inference (same outputs to float rounding) and faster on a CPU: one fewer pass over
    every feature map. The module's state_dict changes (no BN keys), so only do this
    to a model that is used for inference and never saved.
    """
    for child in module.children():
        if isinstance(child, nn.Sequential):
            layers = list(child)
            for i, (conv, bn) in enumerate(zip(layers, layers[1:])):
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not bn.training:
                    child[i], child[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
        fold_batchnorm(child)
    return module


def trace_for_cpu(model: nn.Module, in_chans: int, size: int) -> Callable:
    """A TorchScript trace of ``model``, frozen (constants folded, ReLUs fused into the convolutions).

    Faster on a CPU than the eager model, even with folded BatchNorm (docs/performance.md).
    The first one or two calls with a new batch size run slower while the graph executor
    specialises. TorchScript is deprecated in recent torch releases, so when tracing fails the
    eager model is used.
    """
    example = torch.zeros(1, in_chans, size, size).contiguous(memory_format=torch.channels_last)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # deprecation notices and the tracer's shape-branch notes
            traced = torch.jit.freeze(torch.jit.trace(model, example, check_trace=False).eval())
    except Exception as exc:  # any tracing failure just means eager mode
        log.warning("TorchScript tracing failed (%s: %s); running the classifier in eager mode", type(exc).__name__, exc)
        return model

    def forward(x: torch.Tensor) -> AMSOutput:
        return AMSOutput(*traced(x))  # the trace returns a plain tuple
    return forward


def int8_session(model: nn.Module, loaded: LoadedModel, required: bool) -> Callable | None:
    """``loaded`` in 8 bits on ONNX Runtime (``model``: its network with BatchNorm folded), or None,
    with a warning, where that fails and 8 bits were not ``required`` (then it runs in float)."""
    try:
        return onnx_forward(model, model.cfg.in_chans, model.cfg.input_size, torch.get_num_threads(),
                            checkpoint_key(loaded.path), loaded.int8)
    except Exception as exc:  # ranges of another export, a quantiser that changed
        if required:
            raise FerError(f"could not run {loaded.path} in 8 bits ({exc}); set classifier.precision=fp32") from None
        log.warning("%s in 8 bits failed (%s); running it in float", loaded.path, exc)
        return None


def offline_forward(loaded: LoadedModel, device: torch.device, precision: str = "fp32") -> Callable:
    """What classifies faces offline (evaluation, robustness): the eager module, or where ``precision``
    resolves to 8 bits (see ``fer_ros.models.int8.use_int8``) the ONNX Runtime session the pipeline runs."""
    on_onnxruntime = device.type == "cpu" and onnxruntime_available()
    if not use_int8(precision, loaded.int8, loaded.path, on_onnxruntime):
        return loaded.model
    session = int8_session(fold_batchnorm(copy.deepcopy(loaded.model)).eval(), loaded, precision == "int8")
    return loaded.model if session is None else session


class ClassProbabilities(NamedTuple):
    """``class_probabilities`` of a batch of faces."""

    probabilities: torch.Tensor  # [B, C] softmax(logits / temperature), averaged with the mirror's when asked
    attention: torch.Tensor  # [B, 1, h, w] of the unflipped faces
    fusion_weights: torch.Tensor  # [B, P] of the unflipped faces


def class_probabilities(forward: Callable[[torch.Tensor], AMSOutput], x: torch.Tensor, mirror: bool = False,
                        temperature: float = 1.0) -> ClassProbabilities:
    """Softmax probabilities (of logits / ``temperature``), attention map and fusion weights for a batch.

    ``forward``: an AMS-CNN module, or its trace or ONNX Runtime session (see ``EmotionClassifier``).
    ``mirror`` also classifies the horizontally flipped faces in the same forward pass and
    averages the two (test-time augmentation): expressions are left-right symmetric, so this
    cancels some of the crop's noise. Attention and fusion weights are the unflipped ones.
    """
    if not mirror:
        out = forward(x)
        return ClassProbabilities(torch.softmax(out.logits.float() / temperature, dim=1), out.attention, out.fusion_weights)
    n = len(x)
    both = torch.cat([x, x.flip(-1)])
    if x.is_contiguous(memory_format=torch.channels_last):
        both = both.contiguous(memory_format=torch.channels_last)
    out = forward(both)
    p = torch.softmax(out.logits.float() / temperature, dim=1)
    return ClassProbabilities((p[:n] + p[n:]) / 2, out.attention[:n], out.fusion_weights[:n])


class EmotionClassifier:
    """PyTorch AMS-CNN checkpoints (one, or an ensemble) behind the ``fer_ros.models.classifier.Classifier`` protocol."""

    def __init__(self, weights: list[str] | None, device: torch.device, fusion: str = "sum", half: bool = False,
                 mirror: str | bool = "auto", runtime: str = "auto", precision: str = "auto"):
        if runtime not in RUNTIMES:
            raise FerError(f"unknown classifier runtime '{runtime}'; choose one of {', '.join(RUNTIMES)}")
        if fusion not in FUSION_RULES:
            raise FerError(f"unknown fusion rule '{fusion}'; choose one of {', '.join(FUSION_RULES)}")
        self.device, self.fusion = device, fusion
        self.members: list[LoadedModel] = [load_checkpoint(w, device) for w in (weights or [None])]
        self.mirror = [use_mirror(mirror, m) for m in self.members]  # per member (auto: as its checkpoint says)
        self.class_names = self.members[0].class_names
        self._maps = [class_map(m, self.class_names, self.members[0].path) for m in self.members]
        self.half = half and device.type == "cuda"
        self._forward: list[Callable] = []  # per member: the module, its CPU trace or an ONNX Runtime session
        self.runtime = "torch"  # what runs every member (ONNX Runtime only on the CPU)
        if device.type == "cpu" and (runtime == "onnxruntime" or runtime == "auto" and onnxruntime_available()):
            self.runtime = "onnxruntime"
        self.quantised = [use_int8(precision, m.int8, m.path, self.runtime == "onnxruntime") for m in self.members]
        for i, m in enumerate(self.members):
            fold_batchnorm(m.model)
            if self.half:
                m.model.half()
            if self.runtime == "onnxruntime":
                self._forward.append(self._onnx_or_trace(i, required=runtime == "onnxruntime", int8_required=precision == "int8"))
            elif device.type == "cpu":
                m.model.to(memory_format=torch.channels_last)
                self._forward.append(trace_for_cpu(m.model, m.model.cfg.in_chans, m.model.cfg.input_size))
            else:
                self._forward.append(m.model)

    def _onnx_or_trace(self, i: int, required: bool, int8_required: bool) -> Callable:
        """ONNX Runtime for member ``i``, in 8 bits where ``self.quantised`` says so (with precision auto, in
        float when that fails); with runtime auto, the TorchScript trace when the export fails."""
        m = self.members[i]
        if self.quantised[i]:
            session = int8_session(m.model, m, int8_required)
            if session is not None:
                return session
            self.quantised[i] = False
        try:
            return onnx_forward(m.model, m.model.cfg.in_chans, m.model.cfg.input_size, torch.get_num_threads(),
                                checkpoint_key(m.path))
        except Exception as exc:  # an operator the exporter lacks, a broken onnxruntime install
            if required:
                raise FerError(f"could not run {m.path} on ONNX Runtime ({type(exc).__name__}: {exc}); "
                               f"set classifier.runtime=torch") from exc
            log.warning("ONNX Runtime unavailable for %s (%s: %s); running it with TorchScript", m.path,
                        type(exc).__name__, exc)
            self.runtime = "torch"
            m.model.to(memory_format=torch.channels_last)
            return trace_for_cpu(m.model, m.model.cfg.in_chans, m.model.cfg.input_size)

    @property
    def input_size(self) -> int:
        """Crop size the aligner should produce (the largest member input; others resize)."""
        return max(m.preprocessing.input_size for m in self.members)

    @property
    def align_template(self) -> np.ndarray | None:
        """The first member's landmark template (members are expected to share the framing)."""
        template = self.members[0].preprocessing.align_template
        return None if template is None else np.asarray(template, np.float32)

    @property
    def is_trained(self) -> bool:
        return all(bool(m.meta.get("history")) for m in self.members)

    def describe(self) -> str:
        return ", ".join(f"{m.path} ({m.model.cfg.input_size}px, {len(m.class_names)} classes)" for m in self.members) \
            + f" on {self.runtime}" + (" in 8 bits" if any(self.quantised) else "")

    @torch.inference_mode()
    def classify(self, faces: list[np.ndarray]) -> list[Classification]:
        """``faces``: aligned uint8 RGB crops. One forward pass per member for the whole batch."""
        if not faces:
            return []
        probs, attention, weights = [], None, None
        for m, forward, mirror, mapping in zip(self.members, self._forward, self.mirror, self._maps):
            x = torch.from_numpy(to_model_input(np.stack(faces), m.preprocessing)).to(self.device)
            x = x.half() if self.half else x
            if self.device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            out = class_probabilities(forward, x, mirror, m.temperature)
            probs.append(to_classes(out.probabilities.cpu().numpy(), mapping, len(self.class_names)))
            if attention is None:
                attention, weights = out.attention[:, 0].float().cpu().numpy(), out.fusion_weights.float().cpu().numpy()
        fused = fuse(probs, self.fusion) if len(probs) > 1 else probs[0]
        return [Classification(fused[i].astype(np.float32), attention[i], weights[i]) for i in range(len(faces))]
