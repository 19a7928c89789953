"""Mixed precision for CPU training: bfloat16 autocast, with the convolutions it mishandles kept in fp32.

torch 2.14's oneDNN bf16 weight gradient writes NaN into kernel taps that only ever meet zero
padding, i.e. where the kernel is larger than the feature map it slides over (AMS-CNN's 7x7
pathway reaches 2x2 maps). Those taps never change a channels_last forward pass, so training
looks healthy, but the saved weights hold NaN and every other forward path returns NaN. Those
few convolutions run on tiny maps; keeping them in fp32 costs about a tenth of a bf16 step
(179 against 163 ms per batch of 64 for the 32-64-128 `small`, one thread).
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from fer_ros.models.ams_cnn import dry_forward


def autocast_dtype(device: torch.device, bf16: bool) -> torch.dtype | None:
    """fp16 on CUDA (with a grad scaler), bf16 on CPU when asked (fp32's range, so no scaler), else None."""
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if bf16 and device.type == "cpu" else None


def oversized_convs(model: nn.Module, input_shape: tuple[int, ...]) -> list[nn.Conv2d]:
    """The convolutions whose kernel is larger than their input map (found with one dry forward pass)."""
    found = []

    def record(module: nn.Conv2d, inputs, _output):
        h, w = inputs[0].shape[-2:]
        if module.kernel_size[0] > h or module.kernel_size[1] > w:
            found.append(module)

    dry_forward(model, {nn.Conv2d: record}, input_shape)
    return found


def keep_fp32(conv: nn.Conv2d) -> None:
    """Make ``conv`` run outside autocast in fp32 (its output is cast back by the next autocast op)."""
    forward = conv.forward

    @functools.wraps(forward)
    def fp32_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return forward(x.float())

    conv.forward = fp32_forward


def prepare_bf16(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Guard ``model`` for bf16 autocast training; returns how many convolutions were kept in fp32."""
    convs = oversized_convs(model, input_shape)
    for conv in convs:
        keep_fp32(conv)
    return len(convs)
