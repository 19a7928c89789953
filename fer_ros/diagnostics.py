"""Frame counters of the fer node and their diagnostics summary (no ROS import).

The node's image callback, processing thread and diagnostics timer run on different threads,
so every method takes the lock. ``report`` summarises the window since the previous report
(rates, latency) next to running totals (dropped and bad frames) and grades it OK/WARN/ERROR
against thresholds that are node parameters.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


@dataclass(frozen=True)
class Thresholds:
    warn_latency_ms: float
    error_latency_ms: float
    warn_fps: float  # 0 = never warn on rate


@dataclass(frozen=True)
class DiagnosticReport:
    level: int  # OK, WARN or ERROR
    message: str
    values: list[tuple[str, str]]  # key/value pairs for diagnostic_msgs/KeyValue


@dataclass
class _Window:
    start: float
    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class FrameStats:
    """Thread-safe counts of received, processed, dropped (overwritten) and bad frames."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window = _Window(start=clock())
        self.total_received = 0
        self.total_processed = 0
        self.total_dropped = 0
        self.total_bad = 0
        self.last_faces = 0
        self.last_error = ""

    def received(self, replaced_unprocessed: bool) -> None:
        """A frame arrived; ``replaced_unprocessed``: it overwrote one never processed (a drop)."""
        with self._lock:
            self._window.received += 1
            self.total_received += 1
            if replaced_unprocessed:
                self._window.dropped += 1
                self.total_dropped += 1

    def processed(self, latency_ms: float, faces: int) -> None:
        with self._lock:
            self._window.processed += 1
            self._window.latencies_ms.append(float(latency_ms))
            self.total_processed += 1
            self.last_faces = int(faces)

    def bad(self, reason: str) -> None:
        with self._lock:
            self._window.bad += 1
            self.total_bad += 1
            self.last_error = str(reason)

    def report(self, thresholds: Thresholds, **context: str) -> DiagnosticReport:
        """Grade and reset the current window; ``context`` (device, topic, ...) is passed through as values."""
        with self._lock:
            now = self._clock()
            w, self._window = self._window, _Window(start=now)
            totals = (self.total_dropped, self.total_bad, self.last_faces, self.last_error)
        elapsed = max(now - w.start, 1e-9)
        in_fps, out_fps = w.received / elapsed, w.processed / elapsed
        mean_ms = sum(w.latencies_ms) / len(w.latencies_ms) if w.latencies_ms else 0.0
        max_ms = max(w.latencies_ms, default=0.0)
        level, message = _grade(w, out_fps, mean_ms, thresholds, totals[3])
        values = [
            ("input_rate_hz", f"{in_fps:.2f}"),
            ("processing_rate_hz", f"{out_fps:.2f}"),
            ("latency_mean_ms", f"{mean_ms:.1f}"),
            ("latency_max_ms", f"{max_ms:.1f}"),
            ("faces", str(totals[2])),
            ("dropped_frames", str(totals[0])),
            ("dropped_frames_window", str(w.dropped)),
            ("bad_frames", str(totals[1])),
            ("last_error", totals[3]),
        ]
        values += [(k, str(v)) for k, v in context.items()]
        return DiagnosticReport(level=level, message=message, values=values)


def _grade(w: _Window, out_fps: float, mean_ms: float, t: Thresholds, last_error: str) -> tuple[int, str]:
    if w.received == 0:
        return WARN, "no images received"
    if w.processed == 0 and w.bad > 0:
        return ERROR, f"every frame failed: {last_error}"
    problems: list[tuple[int, str]] = []
    if mean_ms > t.error_latency_ms:
        problems.append((ERROR, f"latency {mean_ms:.0f} ms > {t.error_latency_ms:.0f} ms"))
    elif mean_ms > t.warn_latency_ms:
        problems.append((WARN, f"latency {mean_ms:.0f} ms > {t.warn_latency_ms:.0f} ms"))
    if t.warn_fps > 0 and out_fps < t.warn_fps:
        problems.append((WARN, f"processing {out_fps:.1f} fps < {t.warn_fps:.1f} fps"))
    if w.bad > 0:
        problems.append((WARN, f"{w.bad} bad frame(s): {last_error}"))
    if not problems:
        return OK, f"processing {out_fps:.1f} fps, latency {mean_ms:.0f} ms"
    return max(level for level, _ in problems), "; ".join(text for _, text in problems)
