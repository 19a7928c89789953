"""`fer-ros replay BAG`: run the pipeline over a recorded bag; write /emotions to a new bag and
report accuracy (with ground truth), label stability, detection rate and speed."""
from __future__ import annotations

import json
import sys

from fer_ros.bags.bagtools import open_reader, read_label_csv, read_label_topic, stamp_span
from fer_ros.bags.replay import ANNOTATED_TOPIC, EMOTIONS_TOPIC, ReplayOptions, check_bag, replay_bag
from fer_ros.bags.replay_report import build_report, format_summary, save_report
from fer_ros.commands._common import add_pipeline_options, build_pipeline, pipeline_config
from fer_ros.errors import FerError
from fer_ros.messages.typestore import get_typestore
from fer_ros.outputs import check_output_dir


def register(sub) -> None:
    p = sub.add_parser("replay", help="evaluate the pipeline on a ROS 2 bag (no ROS needed), write /emotions to a bag",
                       description="Reads BAG (a rosbag2 folder, or a .db3/.mcap file) with rosbags, runs the pipeline "
                                   "on every image of --image-topic in timestamp order and writes --out with "
                                   f"{EMOTIONS_TOPIC} (fer_ros/msg/EmotionArray) stamped like the input images. "
                                   "With ground truth (--labels CSV or --label-topic) it also scores accuracy, "
                                   "macro-F1 and the confusion matrix.")
    p.add_argument("bag", help="input bag: rosbag2 folder, or its .db3 / .mcap file")
    p.add_argument("--image-topic", default=None,
                   help="sensor_msgs/Image or CompressedImage topic (default: the bag's only image topic)")
    p.add_argument("--out", default=None, metavar="OUTBAG", help="output bag folder to create (omit to only evaluate)")
    p.add_argument("--storage", choices=["sqlite3", "mcap"], default=None, help="output storage (default: the input's)")
    p.add_argument("--annotated", action="store_true", help=f"also write annotated images on {ANNOTATED_TOPIC}")
    p.add_argument("--emotions-topic", default=EMOTIONS_TOPIC, help="output topic of the EmotionArray messages")
    p.add_argument("--annotated-topic", default=ANNOTATED_TOPIC, help="output topic of the annotated images")
    p.add_argument("--force", action="store_true", help="delete an existing output bag first")
    truth = p.add_mutually_exclusive_group()
    truth.add_argument("--labels", default=None, metavar="CSV",
                       help="ground truth CSV with a header: frame,label or stamp,label or time,label "
                            "(a label holds until the next row; empty or 'none' = no truth)")
    truth.add_argument("--label-topic", default=None, metavar="TOPIC",
                       help="ground truth std_msgs/String topic in the bag")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="write report.json, timeline.png and confusion.png here")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object instead of a summary")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N processed frames (0 = all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.max_frames < 0:
        raise FerError(f"--max-frames must be 0 (all) or positive, got {args.max_frames}")
    config = pipeline_config(args)  # bad settings, labels, bags and output paths fail before the model loads
    if args.report:
        check_output_dir(args.report, "--report", REPORT_FILES)
    store = get_typestore()
    labels = read_label_csv(args.labels) if args.labels else None
    options = ReplayOptions(image_topic=args.image_topic, out=args.out, annotated=args.annotated, storage=args.storage,
                            emotions_topic=args.emotions_topic, annotated_topic=args.annotated_topic, force=args.force,
                            max_frames=args.max_frames, progress=not args.no_progress)
    options.image_topic = check_bag(args.bag, options)
    reader = open_reader(args.bag)
    try:
        if args.label_topic:
            labels = read_label_topic(reader, args.label_topic, store, args.bag)
        span = stamp_span(reader, options.image_topic, store, args.bag) if labels is not None else None
    finally:
        reader.close()
    if span is not None:
        labels.check_clock(*span)
    with build_pipeline(config) as pipeline:
        if not pipeline.is_trained:
            print("fer-ros replay: warning: the emotion weights are untrained; labels are meaningless", file=sys.stderr)
        pipeline.warmup()  # the first frame's latency should not include lazy initialisation
        result = replay_bag(args.bag, pipeline, options, store)
    report = build_report(result, labels)
    if args.report:
        try:
            report["files"] = save_report(report, result, labels, args.report)
        except OSError as exc:  # checked up front, so only a change during the run gets here
            print(format_summary(report))
            raise FerError(f"cannot write the report to '{args.report}': {exc.strerror or exc}; the summary above "
                           "is the replay's result") from None
    print(json.dumps(report) if args.json else format_summary(report))
    if not result.frames:
        raise FerError(f"no frame of {result.image_topic} could be used ({result.bad.total} skipped: "
                       f"{result.bad.examples}); check the topic's encoding")
    return 0


REPORT_FILES = ("report.json", "timeline.png", "confusion.png")
