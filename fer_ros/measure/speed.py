"""Speed, latency and memory of the frame pipeline, next to a naive baseline on the same frames.

Measured per case: throughput (FPS), per-frame latency percentiles, mean time per stage, the
faces found, process CPU time. The naive baseline runs in the same process on the same frames:
facenet-pytorch's ``MTCNN()`` at its default settings on every full frame, one classifier
forward per face.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from fer_ros.measure.frames import CAMERA_FPS, decode_jpeg, scene_frames
from fer_ros.memory import peak_rss_mb
from fer_ros.types import Detection

# Stages of the frame path; ``detect_background`` is the full detection's own time on the second
# thread (not on the frame path, so not in the latency), per frame like the others.
STAGES = ("decode", "detect", "refine", "align", "classify", "track", "smooth", "annotate", "detect_background")


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
