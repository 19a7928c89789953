"""Turn a device setting (auto|cpu|cuda|cuda:N) into a torch.device, with a clear error."""
from __future__ import annotations

import torch

from fer_ros.errors import FerError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA where there is none is an error."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise FerError(f"device '{name}' requested but CUDA is not available; use device 'cpu' or 'auto'")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FerError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) found")
        return device
    raise FerError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N")
