"""Long runs and overload: does memory stay flat, and what happens when frames come too fast.

``soak`` runs faces coming and going for many frames and samples resident memory. ``overload``
feeds frames faster than the pipeline can go, through the newest-frame-wins slot the node uses
(and, for contrast, an unbounded FIFO queue), and reports latency and drops.
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np

from fer_ros.measure.frames import CAMERA_FPS, soak_frames
from fer_ros.measure.speed import process_jpeg
from fer_ros.memory import current_rss_mb
from fer_ros.perception.latest import LatestFrame


def soak(pipeline, n: int, sample_every: int = 1000, frames: list[bytes] | None = None) -> dict:
    """``n`` frames of faces coming and going; resident memory sampled every ``sample_every`` frames.

    Growth is measured from the first sample (taken after ``sample_every`` frames, once the
    allocator and caches have settled) to the last.
    """
    frames = frames or soak_frames()
    pipeline.reset()
    samples, ids, start = [], set(), time.perf_counter()
    for i in range(n):
        result = process_jpeg(pipeline, frames[i % len(frames)], i / CAMERA_FPS)
        ids.update(f.track_id for f in result.faces)
        if (i + 1) % sample_every == 0 or i + 1 == n:
            samples.append({"frame": i + 1, "rss_mb": round(current_rss_mb(), 1), "live_tracks": len(pipeline.finder),
                            "smoother_tracks": len(pipeline.smoother), "track_ids_seen": len(ids)})
    growth = samples[-1]["rss_mb"] - samples[0]["rss_mb"] if samples else 0.0
    span = samples[-1]["frame"] - samples[0]["frame"] if len(samples) > 1 else 0
    return {"frames": n, "seconds": round(time.perf_counter() - start, 1), "sample_every": sample_every,
            "samples": samples, "rss_growth_mb": round(growth, 1),
            "rss_growth_mb_per_1000_frames": round(growth * 1000.0 / span, 3) if span else 0.0,
            "track_ids_seen": len(ids)}


def _camera(sink, frames: list[bytes], rate: float, stop: threading.Event) -> None:
    """Push (jpeg, capture time) at ``rate`` Hz until ``stop``; ``sink`` is a slot's put or a queue's put."""
    period, due, i = 1.0 / rate, time.perf_counter(), 0
    while not stop.is_set():
        sink((frames[i % len(frames)], time.perf_counter()))
        i += 1
        due += period
        time.sleep(max(0.0, due - time.perf_counter()))


def _consume(pipeline, take, seconds: float) -> tuple[list, list]:
    """Process frames from ``take`` for ``seconds``; returns (latencies since capture, processing times) in ms."""
    latency, busy = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        item = take()
        if item is None:
            continue
        data, captured = item
        start = time.perf_counter()
        process_jpeg(pipeline, data, captured)
        done = time.perf_counter()
        latency.append((done - captured) * 1000.0)
        busy.append((done - start) * 1000.0)
    return latency, busy


def overload(pipeline, frames: list[bytes], rate: float, seconds: float = 5.0, fifo: bool = True) -> dict:
    """Frames arrive at ``rate`` Hz, faster than the pipeline can process them.

    Newest-frame-wins (``LatestFrame``, as in the node): latency stays near one or two processing
    times and the excess is dropped and counted. For contrast, with ``fifo`` the same feed goes
    through an unbounded FIFO queue, where latency grows for as long as the overload lasts.
    """
    out = {"offered_fps": round(rate, 1), "seconds": seconds}
    slot: LatestFrame = LatestFrame()
    out["latest_frame"] = _feed(pipeline, frames, rate, seconds, slot.put, lambda: slot.take(timeout=0.1))
    out["latest_frame"].update(received=slot.received, taken=slot.taken, dropped=slot.dropped, pending_at_end=len(slot))
    if fifo:
        q: queue.Queue = queue.Queue()

        def take():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                return None
        out["fifo_queue"] = _feed(pipeline, frames, rate, seconds, q.put, take)
        out["fifo_queue"]["backlog_at_end"] = q.qsize()
    return out


def _feed(pipeline, frames, rate, seconds, put, take) -> dict:
    pipeline.reset()
    stop = threading.Event()
    camera = threading.Thread(target=_camera, args=(put, frames, rate, stop), daemon=True)
    camera.start()
    try:
        latency, busy = _consume(pipeline, take, seconds)
    finally:
        stop.set()
        camera.join()
    lat = np.asarray(latency or [0.0])
    return {"processed": len(latency), "processed_fps": round(len(latency) / seconds, 1),
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                           "max": round(float(lat.max()), 1), "last": round(float(lat[-1]), 1)},
            "processing_ms_p95": round(float(np.percentile(busy or [0.0], 95)), 1)}
