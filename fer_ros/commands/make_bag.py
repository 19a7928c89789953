"""`fer-ros make-bag OUTBAG --from PATH|sample`: a small ROS 2 bag of camera images (and labels)
for demos, tests and trying `fer-ros replay` or `ros2 bag play` without a recording."""
from __future__ import annotations

import os

from fer_ros import sample
from fer_ros.bags.bagtools import SampleBagSpec, read_label_csv, source_frames, write_frames_bag
from fer_ros.messages.typestore import get_typestore


def register(sub) -> None:
    p = sub.add_parser("make-bag", help="build a ROS 2 bag of camera images from images, a video or the sample",
                       description="Writes sensor_msgs/Image (or CompressedImage with --compressed) stamped like a "
                                   "camera driver, and optionally ground-truth labels as std_msgs/String.")
    p.add_argument("out", metavar="OUTBAG", help="bag folder to create")
    p.add_argument("--from", dest="source", default="sample", metavar="PATH|sample",
                   help="'sample' (built-in sequence), a folder of images, an image or a video (default: sample)")
    p.add_argument("--storage", choices=["sqlite3", "mcap"], default="sqlite3", help="bag storage (default: sqlite3)")
    p.add_argument("--topic", default=None,
                   help="image topic (default: /camera/image_raw, or /camera/image_raw/compressed with --compressed)")
    p.add_argument("--compressed", action="store_true", help="write jpeg sensor_msgs/CompressedImage")
    p.add_argument("--encoding", choices=["rgb8", "bgr8"], default="rgb8", help="raw image encoding")
    p.add_argument("--frame-id", default="camera", help="header frame_id of the images")
    p.add_argument("--fps", type=float, default=sample.FPS,
                   help=f"frame rate for the sample and image folders (videos keep their own); default {sample.FPS:g}")
    p.add_argument("--frames", type=int, default=0, help="at most N frames (0 = all; the sample has 60 by default)")
    p.add_argument("--start", type=float, default=None, help="stamp of the first frame in seconds (default: now)")
    p.add_argument("--labels", default=None, metavar="CSV",
                   help="ground truth CSV (frame,label / stamp,label / time,label)")
    p.add_argument("--label-topic", default="/emotion_label", help="std_msgs/String topic for --labels")
    p.add_argument("--force", action="store_true", help="delete an existing bag at OUTBAG first")
    p.set_defaults(func=run)


def run(args) -> int:
    topic = args.topic or ("/camera/image_raw/compressed" if args.compressed else "/camera/image_raw")
    spec = SampleBagSpec(topic=topic, compressed=args.compressed, encoding=args.encoding, frame_id=args.frame_id,
                         storage=args.storage, label_topic=args.label_topic)
    labels = read_label_csv(args.labels) if args.labels else None
    frames = source_frames(args.source, args.fps, args.frames, args.start)
    counts = write_frames_bag(args.out, frames, get_typestore(), spec, labels, force=args.force)
    written = ", ".join(f"{t} {n} messages" for t, n in counts.items())
    print(f"wrote {os.path.abspath(args.out)} ({args.storage}): {written}")
    return 0
