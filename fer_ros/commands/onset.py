"""`fer-ros onset`: how fast and how reliably the published label follows a clear expression.

Labelled faces are replayed as short videos (neutral, a cross-fade, the expression held) through
the classifier and the smoother with the given settings; see ``fer_ros.learning.onset``.
"""
from __future__ import annotations

import json

from fer_ros.commands._common import add_pipeline_options, pipeline_config
from fer_ros.learning.onset import OnsetTiming, classify_sequences, make_sequences, replay


def register(sub) -> None:
    p = sub.add_parser("onset", help="published label on faces replayed as neutral -> expression sequences",
                       description="Each labelled expressive face fades in from a neutral face of the same data set, "
                                   "then is held; reports the published label 1 s after the peak, at the end of the "
                                   "hold, the median delay from the peak and false alarms before the onset.")
    p.add_argument("--data", required=True, help="FER2013 .npz or .csv, or an ImageFolder directory with a neutral class")
    p.add_argument("--split", default=None, help="npz/csv Usage or a sub-folder (e.g. PublicTest)")
    p.add_argument("--labels", default="fer2013", choices=["fer2013", "ferplus"],
                   help="label set of an npz that carries FER+ votes: which faces are neutral and which show each "
                        "expression (ferplus: the annotators' majority, 8 classes)")
    p.add_argument("--per-class", type=int, default=40, help="sequences per expressive class")
    p.add_argument("--hold", type=float, default=3.0, help="seconds the peak is held")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the sequences")
    p.add_argument("--seed", type=int, default=0, help="seed of the face choice and the per-frame jitter")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from fer_ros.device import resolve_device, set_torch_threads
    from fer_ros.errors import FerError
    from fer_ros.learning.datasets import load_dataset
    from fer_ros.models.inference import EmotionClassifier

    if args.per_class < 1 or not args.hold >= 1.0 or not args.fps > 0:
        raise FerError("--per-class must be at least 1, --hold at least 1 second and --fps positive")
    config = pipeline_config(args)
    set_torch_threads(config.classifier.threads)
    timing = OnsetTiming(fps=args.fps, hold_s=args.hold)
    onset = make_sequences(load_dataset(args.data, args.split, args.labels), args.per_class, timing, args.seed)
    c = config.classifier
    classifier = EmotionClassifier(c.weights or None, resolve_device(c.device or config.detector.device), c.fusion,
                                   c.half, c.mirror, c.runtime, c.precision)
    probs = classify_sequences(classifier, onset)
    report = replay(probs, onset, config.smoother, classifier.class_names)
    if args.json:
        print(json.dumps({"data": args.data, "split": args.split, "labels": args.labels, "smoother": vars(config.smoother),
                          "classifier": classifier.describe(), **report.to_json()}))
        return 0
    print(f"{report.sequences} sequences ({args.per_class} per class), {classifier.describe()}")
    print(f"published label right 1 s after the peak: {report.right_at_1s:.1%} (uncertain {report.uncertain_at_1s:.1%}); "
          f"at the end of the {args.hold:g} s hold: {report.right_at_end:.1%}")
    print(f"median delay from the peak to the right label: {report.median_delay_s:.2f} s "
          f"({report.median_delay_reached_s:.2f} s over the sequences that reach it); "
          f"expression published before the onset: {report.false_alarms:.1%}")
    print(f"classifier alone over the hold (no smoothing): {report.raw_right_at_peak:.1%}")
    print("right 1 s after the peak, per class: " + ", ".join(f"{k} {v:.0%}" for k, v in report.per_class_right_at_1s.items()))
    return 0
