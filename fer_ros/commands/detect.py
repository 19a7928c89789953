"""`fer-ros detect PATH`: one JSON object per frame on stdout for an image, video or camera."""
from __future__ import annotations

import json
import sys

from fer_ros.commands._common import add_pipeline_options, build_pipeline, pipeline_config
from fer_ros.errors import FerError
from fer_ros.imageio import FrameWriter, open_source


def register(sub) -> None:
    p = sub.add_parser("detect", help="recognise facial expressions in an image, a video or a camera",
                       description="Prints one JSON object per frame: frame, stamp, faces[{id, bbox, landmarks, label, "
                                   "confidence, probabilities, stable, ...}].")
    p.add_argument("path", help="image file, video file or camera index (0, 1, ...)")
    p.add_argument("--annotate", metavar="OUT", default=None, help="write the annotated image or video here")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = all)")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.max_frames < 0:
        raise FerError(f"--max-frames must be 0 (all) or positive, got {args.max_frames}")
    config = pipeline_config(args)
    with open_source(args.path) as source:  # bad input and a bad --annotate path fail before the models load
        writer = (FrameWriter(args.annotate, source.fps or 25.0, option="--annotate", inputs=[args.path])
                  if args.annotate else None)
        try:
            with build_pipeline(config) as pipeline:
                if not pipeline.is_trained:
                    print("fer-ros detect: warning: the emotion weights are untrained; labels are meaningless", file=sys.stderr)
                for frame in source:
                    result = pipeline.process(frame.image, frame.stamp)
                    print(json.dumps(result.to_json()), flush=True)
                    if writer:
                        writer.write(pipeline.annotate(frame.image, result))
                    if args.max_frames and frame.index + 1 >= args.max_frames:
                        break
        finally:
            if writer:
                writer.close()
    return 0
