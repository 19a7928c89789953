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


def set_torch_threads(threads: int) -> None:
    """Torch's intra-op CPU threads for the whole process (``classifier.threads``; 0 = leave torch's default).

    Process-wide, so only entry points call it (the CLI commands, the ROS node's main), once,
    before building a pipeline; a library object that did it would change every other user's torch.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise FerError(f"thread count must be a whole number >= 0 (0 = torch's default), got {threads!r}")
    if threads:
        torch.set_num_threads(threads)
