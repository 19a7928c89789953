"""`fer-ros bench`: throughput, latency, per-stage time and memory; a naive baseline; soak and overload."""
from __future__ import annotations

import argparse
import json
import sys

from fer_ros.commands._common import add_pipeline_options, build_pipeline, pipeline_config
from fer_ros.config import set_setting
from fer_ros.errors import FerError
from fer_ros.measure import frames, load, speed
from fer_ros.pipeline import FramePipeline


def register(sub) -> None:
    p = sub.add_parser("bench", conflict_handler="resolve",
                       help="measure speed, latency and memory on frames made from real faces",
                       description="Runs the pipeline on synthetic camera frames (real faces over a real background, "
                                   "JPEG-decoded per frame) and, in the same run, a naive baseline (facenet-pytorch "
                                   "MTCNN() defaults on every frame, one classifier forward per face).")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--frames", type=int, default=100, help="timed frames per case")
    p.add_argument("--sizes", type=_sizes, default=_sizes("640x480,1280x720"), help="frame sizes, e.g. 640x480,1280x720")
    p.add_argument("--faces", type=_ints, default=[1, 3, 6], help="faces per frame, e.g. 1,3,6")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline (and the speed-up ratio)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (same as --set classifier.threads=N)")
    p.add_argument("--soak", type=int, default=0, metavar="N",
                   help="instead of the cases: N frames of faces coming and going, resident memory every 1000 frames")
    p.add_argument("--overload", action="store_true",
                   help="instead of the cases: frames arrive faster than processed, newest-frame-wins vs a FIFO queue")
    p.add_argument("--overload-rate", type=float, default=0.0, metavar="HZ",
                   help="arrival rate for --overload (default: 3x the pipeline's measured rate)")
    p.add_argument("--overload-seconds", type=float, default=5.0, help="duration of each --overload run")
    add_pipeline_options(p)
    # Replaces the single-valued --detect-every of the pipeline options: the bench compares several.
    p.add_argument("--detect-every", type=_ints, default=None, metavar="N[,N...]",
                   help="full-detection intervals to measure (default 1, 3 and the pipeline's own detect_every)")
    p.set_defaults(func=run)


def run(args) -> int:
    everys, args.detect_every = args.detect_every, None  # pipeline_config expects one int or None
    config = pipeline_config(args)
    everys = everys or list(dict.fromkeys([1, 3, config.detect_every]))
    if args.threads is not None:
        set_setting(config, "classifier.threads", args.threads)
    if args.frames < 1:
        raise FerError(f"--frames must be at least 1, got {args.frames}")
    with build_pipeline(config) as pipeline:
        if args.soak or args.overload:
            report = _load_modes(pipeline, args)
        else:
            report = speed.run_benchmark(pipeline, args.sizes, args.faces, everys, args.frames, naive=not args.no_naive,
                                         on_case=None if args.json else _print_case_header())
    if args.json:
        print(json.dumps(report))
    else:
        _print_summary(report)
    return 0


def _load_modes(pipeline: FramePipeline, args) -> dict:
    pipeline.warmup((640, 480))
    report = {**speed.environment(pipeline), "settings": speed.settings(pipeline)}
    if args.soak:
        if not args.json:
            print(f"soak: {args.soak} frames at 640x480, faces coming and going ...", file=sys.stderr)
        report["soak"] = load.soak(pipeline, args.soak, sample_every=min(1000, max(1, args.soak // 10)))
    if args.overload:
        scene = frames.scene_frames(640, 480, 1, 90)
        rate = args.overload_rate or 3.0 * speed.time_pipeline(pipeline, scene[:30]).fps
        if not args.json:
            print(f"overload: frames offered at {rate:.0f} Hz for {args.overload_seconds:g} s, twice ...", file=sys.stderr)
        report["overload"] = load.overload(pipeline, scene, rate, args.overload_seconds)
    return {**report, **speed.memory(pipeline)}


# --- text output ---------------------------------------------------------------------------------

SHORT = {"detect_background": "det_bg"}  # column names
HEADER = (f"{'size':>9} {'faces':>5} {'every':>5} {'fps':>6} {'p50':>6} {'p95':>6} {'p99':>6} | "
          + " ".join(f"{SHORT.get(s, s)[:7]:>7}" for s in speed.STAGES)
          + f" | {'cpu/fr':>6} {'@30fps':>6} | {'found':>5} {'naive':>6} {'speedup':>7}")


def _print_case_header():
    printed = []

    def on_case(case: dict) -> None:
        if not printed:
            print("latency and stage times in ms per frame (det_bg: full detection on the second thread, off the "
                  "frame path); cpu/fr: process CPU ms per frame, @30fps: cores that takes for a 30 FPS camera; "
                  "naive = MTCNN() defaults, one forward per face")
            print(HEADER)
            printed.append(True)
        print(_case_line(case), flush=True)
    return on_case


def _case_line(c: dict) -> str:
    stages = " ".join(f"{c['stages_ms'].get(s, 0.0):7.2f}" for s in speed.STAGES)
    naive = f"{c['naive']['fps']:6.1f} {c['speedup_vs_naive']:6.2f}x" if "naive" in c else f"{'-':>6} {'-':>7}"
    return (f"{c['size']:>9} {c['faces']:>5} {c['detect_every']:>5} {c['fps']:6.1f} {c['p50_ms']:6.1f} "
            f"{c['p95_ms']:6.1f} {c['p99_ms']:6.1f} | {stages} | {c['cpu_ms_per_frame']:6.1f} {c['cores_at_30fps']:6.2f} | "
            f"{c['faces_per_frame']:5.2f} {naive}")


def _print_summary(r: dict) -> None:
    print(f"device {r['device']} ({r.get('gpu') or r['cpu']}, {r['cores']} cores), torch threads {r['threads']}, "
          f"load average {r['load_avg_1m']} at start; peak RSS {r['peak_rss_mb']:.0f} MB"
          + (f", CUDA max allocated {r['cuda_max_allocated_mb']:.0f} MB" if "cuda_max_allocated_mb" in r else ""))
    if r.get("weights"):
        print(f"classifier {r['weights']}")
    d = r.get("default")
    if d:
        ratio = f", {d['speedup_vs_naive']:.2f}x the naive baseline" if "speedup_vs_naive" in d else ""
        print(f"default case ({d['size']}, {d['faces']} face, detect every {d['detect_every']}): "
              f"{d['fps']:.1f} fps, p95 {d['p95_ms']:.1f} ms, CPU {d['cpu_ms_per_frame']:.1f} ms per frame "
              f"({d['cores_at_30fps']:.2f} of a core at 30 FPS){ratio}")
    if "soak" in r:
        s = r["soak"]
        print(f"soak: {s['frames']} frames in {s['seconds']} s, {s['track_ids_seen']} track ids; resident memory "
              + ", ".join(f"{x['frame']}: {x['rss_mb']:.0f} MB" for x in s["samples"])
              + f"; growth {s['rss_growth_mb']:+.1f} MB ({s['rss_growth_mb_per_1000_frames']:+.2f} MB per 1000 frames)")
    if "overload" in r:
        o = r["overload"]
        for name in ("latest_frame", "fifo_queue"):
            if name in o:
                x = o[name]
                drops = f", dropped {x['dropped']} of {x['received']}" if "dropped" in x else f", backlog {x['backlog_at_end']} frames at the end"
                print(f"overload {name}: offered {o['offered_fps']} fps, processed {x['processed_fps']} fps{drops}; "
                      f"latency p50 {x['latency_ms']['p50']} ms, p95 {x['latency_ms']['p95']} ms, max {x['latency_ms']['max']} ms")


# --- option parsing ------------------------------------------------------------------------------

def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,3,6; got '{text}'") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers such as 1,3,6; got '{text}'")
    return values


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        w, sep, h = item.strip().lower().partition("x")
        if not (sep and w.isdigit() and h.isdigit()) or int(w) < 32 or int(h) < 32:
            raise argparse.ArgumentTypeError(f"expected sizes WIDTHxHEIGHT (at least 32x32) such as 640x480,1280x720; got '{item}'")
        sizes.append((int(w), int(h)))
    return sizes
