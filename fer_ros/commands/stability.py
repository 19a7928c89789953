"""`fer-ros stability VIDEO --cuts 21,65,185`: per shot, how steady and how sure the published emotion is."""
from __future__ import annotations

import json

from fer_ros.commands._common import add_pipeline_options, build_pipeline, pipeline_config
from fer_ros.imageio import open_source
from fer_ros.measure.stability import parse_cuts, shot_stability


def register(sub) -> None:
    p = sub.add_parser("stability", help="per-shot label stability of a video run through the pipeline",
                       description="For each shot: face frames, share labelled uncertain, mean confidence, and label "
                                   "changes per minute (published and raw).")
    p.add_argument("video", help="video file")
    p.add_argument("--cuts", default="", help="first frame of each new shot, comma-separated (e.g. 21,65,185)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    cuts = parse_cuts(args.cuts) if args.cuts else []
    config = pipeline_config(args)
    with open_source(args.video) as source, build_pipeline(config) as pipeline:
        fps = source.fps or 25.0
        results = [pipeline.process(frame.image, frame.stamp) for frame in source]
    shots = shot_stability(results, cuts, fps)
    if args.json:
        print(json.dumps({"video": args.video, "fps": fps, "frames": len(results), "shots": [s.to_json() for s in shots]}))
        return 0
    print(f"{'frames':>9} {'faces':>5} {'uncertain':>9} {'mean conf':>9} {'flips/min':>9} {'raw flips/min':>13}  labels")
    for s in shots:
        print(f"{s.first_frame:>4}-{s.last_frame:<4} {s.face_frames:>5} {s.uncertain_fraction:>9.2f} {s.mean_confidence:>9.3f} "
              f"{s.label_flips_per_minute:>9.1f} {s.raw_flips_per_minute:>13.1f}  {s.labels}")
    return 0
