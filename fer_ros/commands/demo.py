"""`fer-ros demo`: the whole pipeline on the built-in sample sequence, no camera or data needed."""
from __future__ import annotations

import json
import os

from fer_ros import sample
from fer_ros.commands._common import add_pipeline_options, build_pipeline, pipeline_config
from fer_ros.errors import FerError
from fer_ros.imageio import FrameWriter


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the pipeline on a built-in sample sequence and write an annotated video")
    p.add_argument("--out", default="fer_demo.mp4", help="annotated video to write")
    p.add_argument("--frames", type=int, default=60, help="length of the sample sequence")
    p.add_argument("--json", action="store_true", help="print the per-frame JSON instead of a one-line summary")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.frames < 1:
        raise FerError(f"--frames must be at least 1, got {args.frames}")
    config = pipeline_config(args)
    writer = FrameWriter(args.out, sample.FPS, option="--out")  # a bad path fails before the models load
    with build_pipeline(config) as pipeline, writer:
        print(f"weights: {pipeline.weights_info}")
        if not pipeline.is_trained:
            print("WARNING: these emotion weights are UNTRAINED: the labels below are meaningless.")
        print(f"device: {pipeline.device}; sample: scikit-image astronaut (public domain), {args.frames} frames at {sample.FPS:g} fps")
        for i, image in enumerate(sample.sample_frames(args.frames)):
            result = pipeline.process(image, i / sample.FPS)
            writer.write(pipeline.annotate(image, result))
            if args.json:
                print(json.dumps(result.to_json()))
                continue
            faces = "  ".join(f"id {f.track_id}: {f.label} {f.confidence:.2f}{' stable' if f.stable else ''}"
                              f"{'' if f.detected else ' (carried)'}" for f in result.faces) or "no face"
            ms = sum(result.timings_ms.values())
            print(f"frame {result.frame_index:3d}  t={result.stamp:5.2f}s  {ms:6.1f} ms  {faces}")
    print(f"annotated video: {os.path.abspath(args.out)}")
    return 0
