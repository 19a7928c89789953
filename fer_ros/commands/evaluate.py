"""`fer-ros evaluate`: accuracy, per-class P/R/F1, macro-F1, confusion matrix, speed, memory."""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from fer_ros.config import PipelineConfig
from fer_ros.device import resolve_device
from fer_ros.emotions import match_classes
from fer_ros.errors import FerError
from fer_ros.learning import cross_dataset, evaluation, robustness_report, training
from fer_ros.learning.datasets import drop_duplicates_of, has_ferplus_votes, load_dataset, relabel
from fer_ros.learning.train_args import get_args_parser
from fer_ros.learning.train_data import validation_faces
from fer_ros.models.checkpoint import load_checkpoint
from fer_ros.pipeline import FramePipeline


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a labelled face dataset",
                       description="Evaluate like the FER papers do. For the npz layout with no --split, every row is used.")
    p.add_argument("--data", required=True, action="append",
                   help="FER2013 .npz or .csv, or an ImageFolder directory; repeat to evaluate on several sources, one table")
    p.add_argument("--photos", action="store_true",
                   help="the --data folders hold uncropped photos (root/<class>/<photo>): each photo's largest face goes "
                        "through detect -> align -> classify like a camera frame; photos without a face are counted")
    p.add_argument("--split", default=None, help="npz/csv Usage (Training, PublicTest) or a sub-folder; default: all rows")
    p.add_argument("--held-out", action="store_true",
                   help="evaluate on the checkpoint's own validation faces, rebuilt from the training run it records "
                        "(--data: the dataset it was trained on); e.g. to choose smoother.confidence_threshold without the test set")
    p.add_argument("--labels", default=None, choices=["fer2013", "ferplus"], help="label set (default: the checkpoint's)")
    p.add_argument("--weights", action="append", default=None,
                   help="checkpoint or bundled model name (default: the bundled model); repeat for an ensemble fused "
                        "like the pipeline fuses it (--fusion)")
    p.add_argument("--fusion", default=None, choices=["sum", "product"],
                   help="how an ensemble's probabilities combine (default: classifier.fusion)")
    p.add_argument("--dedupe-against", default=None, metavar="SPLIT",
                   help="drop faces pixel-identical to a face of SPLIT (FER2013: PublicTest vs Training)")
    p.add_argument("--compare", default=None, metavar="WEIGHTS", help="second checkpoint: paired McNemar test on the same faces")
    p.add_argument("--robustness", action="store_true",
                   help="also score every face under seeded occlusion, lighting, rotation, blur, noise, JPEG and low-resolution "
                        "perturbations at several severities (with --compare: both models on the same faces, McNemar per "
                        "condition); --out gets robustness.json and robustness.png")
    p.add_argument("--robustness-seed", type=int, default=0, metavar="SEED", help="seed of the --robustness perturbations")
    p.add_argument("--kfold", type=int, default=0, help="stratified k-fold cross-validation: train K models on the data")
    p.add_argument("--epochs", type=int, default=10, help="epochs per fold for --kfold")
    p.add_argument("--preset", default="small", help="model preset for --kfold")
    p.add_argument("--through-pipeline", type=int, default=0, metavar="N",
                   help="also push N faces, upscaled to camera size, through detect -> align -> classify")
    p.add_argument("--upscale", type=int, default=4, help="--through-pipeline: enlarge the 48 px faces this many times (4 = 192 px)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="average each face with its mirror image (test-time augmentation), or not; "
                        "default: what the pipeline does (classifier.mirror: auto, as each checkpoint says)")
    p.add_argument("--precision", default=None, choices=["auto", "fp32", "int8"],
                   help="number format of the network: int8 runs a checkpoint's INT8 ranges on ONNX Runtime; "
                        "default: what the pipeline does (classifier.precision: auto)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="directory for evaluation.json and the confusion matrix PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    p.set_defaults(func=run)


def run(args) -> int:
    sources = args.data if isinstance(args.data, list) else [args.data]
    if len(sources) > 1 and (args.kfold or args.held_out):
        raise FerError("--kfold and --held-out take one --data source")
    reports = []
    for source in sources:
        one = argparse.Namespace(**{**vars(args), "data": source, "out": cross_dataset.out_dir(args.out, source, len(sources))})
        reports.append(evaluate_source(one))
        if not args.json:
            if len(sources) > 1:
                print(f"== {source}")
            show(reports[-1])
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else {"sources": reports}))
    elif len(reports) > 1:
        print(cross_dataset.format_sources(reports))
    return 0


def evaluate_source(args) -> dict:
    """The report of one --data source (and its files under --out)."""
    if args.held_out and (args.split or args.labels or args.dedupe_against):
        raise FerError("--held-out takes the split and labels the checkpoint was trained with; drop --split, --labels and --dedupe-against")
    weights = args.weights or [None]
    if len(weights) > 1 and (args.held_out or args.kfold or args.compare):
        raise FerError("--held-out, --kfold and --compare take one checkpoint; pass --weights once")
    if args.robustness and args.kfold:
        raise FerError("--robustness scores trained models on a test set; drop --kfold")
    if args.photos and (args.kfold or args.held_out or args.compare or args.robustness or args.through_pipeline):
        raise FerError("--photos scores photos through the pipeline only; drop --kfold, --held-out, --compare, --robustness "
                       "and --through-pipeline")
    device = resolve_device(args.device)
    defaults = PipelineConfig()  # evaluate what the robot runs when given no options
    args.mirror = defaults.classifier.mirror if args.mirror is None else str(args.mirror).lower()
    fusion = args.fusion or defaults.classifier.fusion
    precision = args.precision or defaults.classifier.precision
    if args.kfold:
        report = cross_validate(args)
    elif args.photos:
        cross_dataset.photo_folder(args.data)  # a wrong folder fails before the models load
        with _pipeline(args, weights, fusion) as pipeline:
            report = cross_dataset.evaluate_photos(pipeline, args.data)
    else:
        members = [load_checkpoint(w, device) for w in weights]
        loaded = members[0]
        # a FER+ model is scored on the FER+ labels where the data has the votes, else on the data's own labels
        plus = "contempt" in loaded.class_names and has_ferplus_votes(args.data)
        labels = args.labels or ("ferplus" if plus else "fer2013")
        data = validation_faces(loaded, args.data) if args.held_out else load_dataset(args.data, args.split, labels)
        if args.dedupe_against:
            data = drop_duplicates_of(data, load_dataset(args.data, args.dedupe_against, labels))
        ds, absent = relabel(data, loaded.class_names)  # by class name and its aliases, not by position
        report, probs = evaluation.evaluate_checkpoint(members, ds, device, args.mirror,
                                                       threshold=defaults.smoother.confidence_threshold, fusion=fusion,
                                                       precision=precision)
        report["absent_classes"] = absent
        renamed = zip(data.class_names, match_classes(data.class_names, ds.class_names))
        report["class_map"] = {name: ds.class_names[i] for name, i in renamed if name != ds.class_names[i]}
        if args.compare:
            compared = load_checkpoint(args.compare, device)
            other_ds, _ = relabel(data, compared.class_names)
            other, other_probs = evaluation.evaluate_checkpoint(compared, other_ds, device, args.mirror, precision=precision)
            paired = evaluation.mcnemar(probs.argmax(1) == ds.labels, other_probs.argmax(1) == other_ds.labels)
            report["comparison"] = {"weights": args.compare, "accuracy": other["accuracy"], "macro_f1": other["macro_f1"], **paired}
        if args.robustness:
            report["robustness"] = robustness_report.run_models(members, ds, device, args.mirror, fusion, args.robustness_seed,
                                                                (compared, other_ds) if args.compare else None, precision)
        if args.through_pipeline:
            with _pipeline(args, [m.path for m in members], fusion) as pipeline:
                report["through_pipeline"] = evaluation.through_pipeline(pipeline, ds, upscale=args.upscale,
                                                                         limit=args.through_pipeline)
    if args.out:
        report["files"] = evaluation.save_report(report, args.out)
        if "robustness" in report:
            report["files"].update(robustness_report.save(report["robustness"], args.out))
    return report


def _pipeline(args, weights: list, fusion: str) -> FramePipeline:
    """The live pipeline with these models, mirror, fusion and precision, on --device."""
    config = PipelineConfig()
    config.classifier.weights = [w for w in weights if w]
    config.classifier.mirror, config.classifier.fusion = args.mirror, fusion
    config.classifier.precision = args.precision or config.classifier.precision
    config.detector.device = args.device
    return FramePipeline(config)


def show(report: dict) -> None:
    """The text report of one source."""
    print(evaluation.format_report(report))
    if "photos" in report:
        print(f"faces found in {report['faces_found']} of {report['photos']} photos; counting the rest as wrong, "
              f"accuracy {report['accuracy_all']:.4f}")
    if "comparison" in report:
        c = report["comparison"]
        print(f"vs {c['weights']}: accuracy {c['accuracy']:.4f}, macro-F1 {c['macro_f1']:.4f}; "
              f"McNemar p = {c['p_value']:.4g} ({c['a_only_correct']} vs {c['b_only_correct']} discordant)")
    if "robustness" in report:
        print(robustness_report.format_table(report["robustness"]))
    if "through_pipeline" in report:
        print("through the live pipeline: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                    for k, v in report["through_pipeline"].items()))
    for name, path in report.get("files", {}).items():
        print(f"wrote {name}: {path}")


def cross_validate(args) -> dict:
    """Train one model per fold on the other folds and pool the held-out predictions."""
    ds = load_dataset(args.data, args.split, args.labels or "fer2013")
    folds = evaluation.stratified_folds(ds.labels, args.kfold, seed=0)
    y_true, y_pred, per_fold = [], [], []
    for k, test_idx in enumerate(folds):
        train_idx = np.setdiff1d(np.arange(len(ds)), test_idx)
        out = os.path.join(args.out or "runs/kfold", f"fold{k}")
        targs = get_args_parser().parse_args(["--data", args.data, "--preset", args.preset, "--epochs",
                                                       str(args.epochs), "--out", out, "--device", args.device])
        result = training.main(targs, dataset=ds.subset(train_idx))
        m, probs = evaluation.evaluate_checkpoint(load_checkpoint(result["best"]), ds.subset(test_idx), resolve_device(args.device))
        per_fold.append({"fold": k, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]})
        y_true.append(ds.labels[test_idx])
        y_pred.append(probs.argmax(1))
    report = evaluation.classification_metrics(np.concatenate(y_true), np.concatenate(y_pred), ds.class_names)
    accs = [f["accuracy"] for f in per_fold]
    report.update({"folds": per_fold, "accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs))})
    return report
