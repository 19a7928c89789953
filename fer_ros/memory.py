"""Resident memory of this process, for the benchmark and the evaluation reports."""
from __future__ import annotations

import os
import platform
import resource


def peak_rss_mb() -> float:
    """The most resident memory this process has held, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024.0  # macOS: bytes, Linux: KiB


def current_rss_mb() -> float:
    """Resident memory now (Linux /proc); the peak so far where /proc is missing."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()
