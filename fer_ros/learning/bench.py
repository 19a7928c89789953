"""Speed, latency and memory of the frame pipeline on camera-like frames made from real faces.

Frames: scikit-image's ``astronaut`` head (a NASA photograph in the public domain) pasted 1, 3
or 6 times over a cluttered real background (scikit-image's ``coffee``), at face sizes of a
person 1-2 m from a robot's camera, moving a little every frame so the tracker has work. Every
frame is stored JPEG-compressed and decoded inside the timed loop, as a node on a compressed
camera topic must do.

Measured per case: throughput (FPS), per-frame latency percentiles, mean time per stage, the
faces found. A naive baseline runs in the same process on the same frames: facenet-pytorch's
``MTCNN()`` at its default settings on every full frame, one classifier forward per face.
``soak`` checks that memory stays flat over a long run; ``overload`` feeds frames faster than
the pipeline can go through the newest-frame-wins slot the node uses and reports latency and drops.
"""
from __future__ import annotations

import os
import platform
import queue
import threading
import time
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from fer_ros.errors import FerError
from fer_ros.imageio import decode_rgb, encode_rgb
from fer_ros.memory import current_rss_mb, peak_rss_mb
from fer_ros.perception.latest import LatestFrame
from fer_ros.types import Detection, RGBImage

# Stages of the frame path; ``detect_background`` is the full detection's own time on the second
# thread (not on the frame path, so not in the latency), per frame like the others.
STAGES = ("decode", "detect", "refine", "align", "classify", "track", "smooth", "annotate", "detect_background")
CAMERA_FPS = 30.0  # stamps of the synthetic frames
JPEG_QUALITY = 90
HEAD_BOX = (134, 26, 314, 206)  # x1 y1 x2 y2 of the astronaut's head in the 512x512 image
FACE_OF_HEAD = 0.62  # MTCNN's face box is about 0.62 of that head patch tall
# Face box height as a fraction of the frame height: one person at about 1 m, three at about
# 1.5 m, six at about 2 m from a ~60 degree camera (115, 86 and 67 px tall at 640x480).
FACE_HEIGHT = {1: 0.24, 3: 0.18, 6: 0.14}
SOAK_SCHEDULE = ((50, 1), (30, 0), (70, 3), (30, 0), (70, 6), (50, 2))  # (frames, faces): people come and go


# --- synthetic frames ----------------------------------------------------------------------------

class SceneRenderer:
    """Renders frame ``i`` of a scene with ``n`` faces; deterministic, so runs are comparable."""

    def __init__(self, width: int, height: int) -> None:
        from skimage import data

        self.width, self.height = int(width), int(height)
        x1, y1, x2, y2 = HEAD_BOX
        head = np.ascontiguousarray(data.astronaut()[y1:y2, x1:x2])
        # Four looks of the same head (mirrored, dimmer) so the faces of one frame differ a little.
        self.heads = [head, head[:, ::-1], _dim(head, 0.8), _dim(head[:, ::-1], 0.9)]
        self.background = cv2.resize(data.coffee(), (self.width, self.height), interpolation=cv2.INTER_AREA)

    def render(self, n: int, i: int) -> RGBImage:
        frame = self.background.copy()
        if n == 0:
            return frame
        side = FACE_HEIGHT.get(n, FACE_HEIGHT[6]) * self.height / FACE_OF_HEAD  # head patch, pixels
        cols = min(n, 3)
        rows = (n + cols - 1) // cols
        for k in range(n):
            phase = 2.0 * np.pi * (i / (3.0 * CAMERA_FPS) + k / 7.0)  # one slow sway every 3 s
            cx = self.width * (k % cols + 0.5) / cols + 0.04 * self.width * np.sin(phase)
            cy = self.height * (k // cols + 0.5) / rows + 0.02 * self.height * np.cos(phase)
            size = int(side * (1.0 + 0.05 * np.sin(phase / 2.0)))
            _paste(frame, self.heads[k % len(self.heads)], int(cx - size / 2), int(cy - size / 2), size)
        return frame


def _dim(image: RGBImage, factor: float) -> RGBImage:
    return np.ascontiguousarray(np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8))


def _paste(canvas: RGBImage, patch: RGBImage, x: int, y: int, size: int) -> None:
    patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, w), min(y + size, h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


def encode_jpeg(rgb: RGBImage) -> bytes:
    return encode_rgb(rgb, "jpeg", JPEG_QUALITY)


def decode_jpeg(data: bytes) -> RGBImage:
    rgb = decode_rgb(data)
    if rgb is None:
        raise FerError(f"could not decode a {len(data)}-byte benchmark frame as JPEG; check the OpenCV installation")
    return rgb


def scene_frames(width: int, height: int, faces: int, n: int) -> list[bytes]:
    """``n`` JPEG frames of ``faces`` swaying faces."""
    renderer = SceneRenderer(width, height)
    return [encode_jpeg(renderer.render(faces, i)) for i in range(n)]


def soak_frames(width: int = 640, height: int = 480) -> list[bytes]:
    """One cycle of SOAK_SCHEDULE: faces enter and leave, so tracks keep starting and ending."""
    renderer = SceneRenderer(width, height)
    counts = [faces for frames, faces in SOAK_SCHEDULE for _ in range(frames)]
    return [encode_jpeg(renderer.render(n, i)) for i, n in enumerate(counts)]


# --- measurement ---------------------------------------------------------------------------------

@dataclass
class RunStats:
    """Timings of one run over a list of frames."""

    frames: int
    fps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    stages_ms: dict  # stage -> mean milliseconds per frame (detect averaged over all frames)
    detect_ms_per_run: float  # mean time of one full-frame detector run (on either thread)
    faces_per_frame: float  # mean number of faces reported
    cpu_ms_per_frame: float = 0.0  # process CPU time (every thread) per frame
    cores_at_30fps: float = 0.0  # share of one core the whole process needs for a 30 FPS camera

    def to_json(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()} | {
            "stages_ms": {k: round(v, 3) for k, v in self.stages_ms.items()}}


@dataclass
class _Tally:
    latencies: list = field(default_factory=list)
    stages: dict = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    detect_runs: int = 0
    faces: int = 0

    def add(self, seconds: float, timings: dict, faces: int, detected: bool) -> None:
        self.latencies.append(seconds * 1000.0)
        for stage, ms in timings.items():
            self.stages[stage] = self.stages.get(stage, 0.0) + ms
        self.detect_runs += int(detected)
        self.faces += faces

    def stats(self, wall: float, cpu: float = 0.0) -> RunStats:
        n = max(len(self.latencies), 1)
        lat = np.asarray(self.latencies or [0.0])
        p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
        return RunStats(frames=len(self.latencies), fps=len(self.latencies) / max(wall, 1e-9), p50_ms=p50, p95_ms=p95,
                        p99_ms=p99, mean_ms=float(lat.mean()),
                        stages_ms={s: v / n for s, v in self.stages.items()},
                        detect_ms_per_run=(self.stages.get("detect", 0.0) + self.stages.get("detect_background", 0.0))
                        / max(self.detect_runs, 1),
                        faces_per_frame=self.faces / n, cpu_ms_per_frame=cpu * 1000.0 / n,
                        cores_at_30fps=cpu * CAMERA_FPS / n)


def process_jpeg(pipeline, data: bytes, stamp: float, annotate: bool = True):
    """Decode, run the pipeline, draw: what the node does with one compressed frame."""
    start = time.perf_counter()
    rgb = decode_jpeg(data)
    decoded = time.perf_counter()
    result = pipeline.process(rgb, stamp)
    if annotate:
        pipeline.annotate(rgb, result)
    result.timings_ms["decode"] = (decoded - start) * 1000.0
    return result


def time_pipeline(pipeline, frames: list[bytes], annotate: bool = True, warmup: int = 5) -> RunStats:
    """Run every frame through the pipeline (tracks reset first); the first ``warmup`` are not counted."""
    pipeline.reset()
    for i, data in enumerate(frames[:warmup]):
        process_jpeg(pipeline, data, i / CAMERA_FPS, annotate)
    pipeline.reset()
    tally = _Tally()
    start, cpu = time.perf_counter(), time.process_time()
    for i, data in enumerate(frames):
        t0 = time.perf_counter()
        result = process_jpeg(pipeline, data, i / CAMERA_FPS, annotate)
        tally.add(time.perf_counter() - t0, result.timings_ms, len(result.faces), result.ran_detection)
    wall = time.perf_counter() - start
    pipeline.reset()  # waits for a detection still running on the second thread: its CPU time counts
    return tally.stats(wall, time.process_time() - cpu)


class NaiveBaseline:
    """What a first implementation does: facenet-pytorch's ``MTCNN()`` at its defaults (min face 20 px,
    thresholds 0.6/0.7/0.7, pyramid factor 0.709) on every full frame, then one classifier forward
    per face; no tracking, no smoothing, no drawing. Same aligner and classifier as the pipeline."""

    def __init__(self, pipeline) -> None:
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(device=pipeline.device)
        self.aligner, self.classifier = pipeline.aligner, pipeline.classifier

    def process(self, data: bytes) -> tuple[int, dict]:
        timings, t0 = {}, time.perf_counter()
        rgb = decode_jpeg(data)
        t1 = time.perf_counter()
        boxes, probs, points = self.mtcnn.detect(rgb, landmarks=True)
        t2 = time.perf_counter()
        faces = [] if boxes is None else [Detection(b, p, s) for b, s, p in zip(boxes, probs, points)]
        crops = [self.aligner.align(rgb, d).image for d in faces]
        t3 = time.perf_counter()
        for crop in crops:
            self.classifier.classify([crop])
        t4 = time.perf_counter()
        for stage, a, b in (("decode", t0, t1), ("detect", t1, t2), ("align", t2, t3), ("classify", t3, t4)):
            timings[stage] = (b - a) * 1000.0
        return len(faces), timings


def time_naive(baseline: NaiveBaseline, frames: list[bytes], warmup: int = 2) -> RunStats:
    for data in frames[:warmup]:
        baseline.process(data)
    tally = _Tally()
    start, cpu = time.perf_counter(), time.process_time()
    for data in frames:
        t0 = time.perf_counter()
        faces, timings = baseline.process(data)
        tally.add(time.perf_counter() - t0, timings, faces, True)
    return tally.stats(time.perf_counter() - start, time.process_time() - cpu)


# --- the benchmark ---------------------------------------------------------------------------------

def run_benchmark(pipeline, sizes: list[tuple[int, int]], face_counts: list[int], detect_every: list[int],
                  n_frames: int, naive: bool = True, on_case=None) -> dict:
    """Every size x faces x detect-every case, plus the naive baseline per size x faces.

    ``default`` is the 640x480 one-face case at the pipeline's own ``detect_every`` (the first
    measured case where that combination was not asked for). ``on_case(case_dict)`` is called as
    each case finishes, for progress output.
    """
    env = environment(pipeline)  # before the run: the load average describes the machine, not this run
    own_every = pipeline.config.detect_every
    everys = list(dict.fromkeys(detect_every or [own_every]))
    baseline = NaiveBaseline(pipeline) if naive else None
    cases = []
    try:
        for width, height in sizes:
            pipeline.warmup((width, height))
            for faces in face_counts:
                frames = scene_frames(width, height, faces, n_frames)
                reference = time_naive(baseline, frames) if baseline else None
                for every in everys:
                    pipeline.set("detect_every", every)
                    case = {"size": f"{width}x{height}", "faces": faces, "detect_every": every,
                            **time_pipeline(pipeline, frames).to_json()}
                    if reference:
                        case["naive"] = reference.to_json()
                        case["speedup_vs_naive"] = round(case["fps"] / max(reference.fps, 1e-9), 2)
                    cases.append(case)
                    if on_case:
                        on_case(case)
    finally:
        pipeline.set("detect_every", own_every)
    default = next((c for c in cases if c["size"] == "640x480" and c["faces"] == 1 and c["detect_every"] == own_every),
                   cases[0] if cases else {})
    return {**env, "frames": n_frames, "settings": settings(pipeline),
            "default": default, "cases": cases, **memory(pipeline)}


def settings(pipeline) -> dict:
    """The pipeline settings that decide speed, for the record."""
    c = pipeline.config
    return {"detector": asdict(c.detector), "detect_every": c.detect_every, "classifier_threads": c.classifier.threads,
            "annotate": True, "naive_mtcnn": {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709}}


# --- environment and memory ----------------------------------------------------------------------

def environment(pipeline) -> dict:
    """What the numbers depend on: device, CPU, threads, and how busy the machine was."""
    env = {"device": str(pipeline.device), "threads": torch.get_num_threads(), "cpu": cpu_name(),
           "cores": os.cpu_count(), "torch": torch.__version__, "opencv": cv2.__version__,
           "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
           "weights": pipeline.weights_info}
    if pipeline.device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(pipeline.device)
    return env


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory(pipeline) -> dict:
    out = {"peak_rss_mb": round(peak_rss_mb(), 1)}
    if pipeline.device.type == "cuda":
        out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(pipeline.device) / 2**20, 1)
    return out


# --- long run and overload -----------------------------------------------------------------------

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
            samples.append({"frame": i + 1, "rss_mb": round(current_rss_mb(), 1), "live_tracks": len(pipeline.tracker),
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
