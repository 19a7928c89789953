"""The frame pipeline: detect -> track -> align -> classify (one batch) -> smooth.

One object, driven the same way by the CLI, the ROS node, the bag replayer and the benchmark:
``process(rgb_image, stamp) -> FrameResult``. Detection can run every N frames with the
tracker carrying boxes in between; everything else runs on every frame. Faces that another
detector has already found and aligned skip the first three stages:
``process_aligned({face_id: crop}, stamp) -> FrameResult``, with the same classifier and
temporal stage.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Mapping

import cv2
import numpy as np

from fer_ros.config import PipelineConfig, get_field, set_setting
from fer_ros.device import resolve_device
from fer_ros.errors import FerError
from fer_ros.models.classifier import Classifier
from fer_ros.models.inference import EmotionClassifier
from fer_ros.perception.affect import AffectEstimator
from fer_ros.perception.alignment import FaceAligner
from fer_ros.perception.annotate import annotate
from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.finder import FaceFinder
from fer_ros.perception.smoothing import EmotionSmoother
from fer_ros.types import Detection, FaceResult, FrameResult, RGBImage, Track, as_rgb_image


@contextmanager
def timed(timings: dict, stage: str):
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0


# Why a setting that is not ``live`` cannot change on a built pipeline (by name, else by section).
FIXED_AT_BUILD = {
    "detector.thresholds": "the MTCNN cascade is built with them",
    "detector.device": "the detector's networks are loaded onto it",
    "classifier": "the classifier's models are loaded, folded and traced with it",
    "classifier.threads": "torch's thread count is process-wide; the command or node sets it at start-up",
}


def _seconds(stamp) -> float:
    """A frame stamp as float seconds; FerError for what is not a number (the smoother checks it is finite)."""
    if isinstance(stamp, (bool, str)) or not isinstance(stamp, (int, float, np.number)):
        raise FerError(f"stamp must be a number of seconds, got {type(stamp).__name__} {stamp!r:.40}")
    return float(stamp)


def _resized(crop: RGBImage, size: int) -> RGBImage:
    """A crop at the classifier's input size (area-averaged when it shrinks), so a batch stacks."""
    if crop.shape[:2] == (size, size):
        return crop
    shrink = crop.shape[0] > size or crop.shape[1] > size
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class FramePipeline:
    """``classifier``: any ``fer_ros.models.classifier.Classifier`` (another runtime); default: the PyTorch
    checkpoints named by ``config.classifier``, on ``classifier.device`` (else ``detector.device``).

    Torch's CPU thread count is process-wide, so it is the entry point's job
    (``fer_ros.device.set_torch_threads``), not the pipeline's.
    """

    def __init__(self, config: PipelineConfig | None = None, classifier: Classifier | None = None):
        self.config = (config or PipelineConfig()).validate()
        c = self.config.classifier
        self.device = resolve_device(c.device or self.config.detector.device)  # the classifier's device
        self.classifier: Classifier = classifier or EmotionClassifier(c.weights or None, self.device, c.fusion, c.half, c.mirror,
                                                                      c.runtime, c.precision)
        self.class_names = list(self.classifier.class_names)
        self.detector = FaceDetector(self.config.detector)
        self.aligner = FaceAligner(self.config.align, self.classifier.input_size, template=self.classifier.align_template)
        self.finder = FaceFinder(self.detector, self.config)  # owns the tracker and the detection thread
        self.smoother = EmotionSmoother(self.config.smoother, self.class_names)
        self.affect = AffectEstimator(self.class_names)
        self.frame_index = 0
        self._aligned_ids: dict[str, int] = {}  # face id of another detector -> our track id for it
        self._next_aligned_id = 1
        self._explainer = None  # Grad-CAM for annotate.explain, built the first time it is asked for

    @property
    def weights_info(self) -> str:
        return self.classifier.describe()

    @property
    def is_trained(self) -> bool:
        return self.classifier.is_trained

    def set(self, name: str, value) -> None:
        """Change one live setting (dotted name) while running; stages read their config on every call.

        A setting that is not live is refused with the reason (FerError): it was used to build
        a stage, so changing it here would be silently ignored.
        """
        try:
            live = get_field(self.config, name).metadata.get("live")
        except (AttributeError, KeyError):
            live = None  # unknown: set_setting names the known settings
        if live is False:
            reason = FIXED_AT_BUILD.get(name) or FIXED_AT_BUILD.get(name.split(".")[0], "a stage is built with it")
            raise FerError(f"setting '{name}' cannot change on a running pipeline ({reason}); "
                           f"build a new pipeline (or restart the node) with the new value")
        set_setting(self.config, name, value)

    def process(self, image: RGBImage, stamp: float | None = None) -> FrameResult:
        image = as_rgb_image(image)
        stamp = float(self.frame_index) if stamp is None else _seconds(stamp)
        timings: dict[str, float] = {}
        tracks, run_detection = self.finder.step(image, self.frame_index, timings)
        with timed(timings, "track"):
            for ended in self.finder.pop_ended():
                self.smoother.drop(ended)
        with timed(timings, "align"):
            aligned = [self.aligner.align(image, Detection(t.bbox, t.landmarks, t.score)) for t in tracks]
        with timed(timings, "classify"):
            classes = self.classifier.classify([a.image for a in aligned])
        with timed(timings, "smooth"):
            faces = [self._face_result(t.track_id, t, c, stamp) for t, c in zip(tracks, classes)]
        result = FrameResult(self.frame_index, stamp, (image.shape[1], image.shape[0]), list(self.class_names),
                             faces, timings, run_detection)
        self.frame_index += 1
        return result

    def process_aligned(self, crops: Mapping[str, RGBImage], stamp: float | None = None) -> FrameResult:
        """Classify faces another detector found and aligned, keyed by its face ids: no detection,
        tracking or alignment here, the same classifier, smoother and affect estimate as ``process``.

        Each id keeps its own smoothing state (and a track id of ours) until ``forget(face_id)``,
        because only the caller knows when the other detector lost a face. Crops of any size are
        resized to the classifier's input; they keep the other detector's framing. The faces come
        back in the order of ``crops``, each framed by its whole crop: ``bbox`` covers the
        ``input_size`` square, landmarks are NaN and ``detection_score`` is 1.
        """
        stamp = float(self.frame_index) if stamp is None else _seconds(stamp)
        timings: dict[str, float] = {}
        size = int(self.classifier.input_size)
        with timed(timings, "align"):
            images = [_resized(as_rgb_image(crop), size) for crop in crops.values()]
        with timed(timings, "classify"):
            classes = self.classifier.classify(images)
        with timed(timings, "smooth"):
            faces = [self._face_result(str(face_id), self._aligned_track(str(face_id), size), c, stamp)
                     for face_id, c in zip(crops, classes)]
        result = FrameResult(self.frame_index, stamp, (size, size), list(self.class_names), faces, timings, False)
        self.frame_index += 1
        return result

    def _aligned_track(self, face_id: str, size: int) -> Track:
        """The track of an aligned face: our id for it (new ids count up from 1), framed by the whole crop."""
        if face_id not in self._aligned_ids:
            self._aligned_ids[face_id], self._next_aligned_id = self._next_aligned_id, self._next_aligned_id + 1
        return Track(self._aligned_ids[face_id], np.array([0.0, 0.0, size, size], np.float32),
                     np.full((5, 2), np.nan, np.float32), 1.0, detected=True, detection_index=None)

    def forget(self, face_id: str) -> None:
        """Drop the smoothing state of a face ``process_aligned`` was given (its detector lost it);
        the id starts afresh, with a new track id, if it comes back. Unknown ids are ignored."""
        self._aligned_ids.pop(str(face_id), None)
        self.smoother.drop(str(face_id))

    def _face_result(self, key, track: Track, cls, stamp: float) -> FaceResult:
        """``key``: the smoother's key, our track id or another detector's face id (never equal: int vs str)."""
        smoothed = self.smoother.update(key, cls.probabilities, stamp)
        affect = self.affect(smoothed.probabilities)  # from the smoothed probabilities: as steady as the label
        return FaceResult(
            track_id=track.track_id, bbox=track.bbox, landmarks=track.landmarks, detection_score=track.score,
            label=smoothed.label, confidence=smoothed.confidence, probabilities=smoothed.probabilities,
            raw_label=self.class_names[int(np.argmax(cls.probabilities))], raw_probabilities=cls.probabilities,
            stable=smoothed.stable, stable_for=smoothed.stable_for, detected=track.detected,
            valence=affect.valence, arousal=affect.arousal, attention=cls.attention, fusion_weights=cls.fusion_weights,
        )

    def annotate(self, image: RGBImage, result: FrameResult) -> RGBImage:
        start = time.perf_counter()
        if self.config.annotate.explain and self._explainer is None:
            from fer_ros.models.gradcam import FaceExplainer
            self._explainer = FaceExplainer.for_classifier(self.classifier, self.aligner)  # None: not a PyTorch classifier
        out = annotate(image, result, self.config.annotate, self._explainer)
        result.timings_ms["annotate"] = (time.perf_counter() - start) * 1000.0
        return out

    def warmup(self, size: tuple[int, int] = (640, 480), detection: bool = True) -> None:
        """A detection and some classifications so the first real frames are not slow.

        On CPU the classifier is a TorchScript trace that specialises during its first two calls
        for each batch size (the first costs ~10x a normal call), so batches of 1-3 faces run twice.
        ``detection=False``: the classifier only (faces come aligned from another detector).
        """
        if detection:
            self.detector.detect(np.full((size[1], size[0], 3), 127, np.uint8))
            self.finder.warmup(np.full((size[1], size[0], 3), 127, np.uint8))
        s = self.classifier.input_size
        face = np.full((s, s, 3), 127, np.uint8)
        for n in (1, 1, 2, 2, 3, 3):
            self.classifier.classify([face] * n)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new video, a bag loop, a camera restart)."""
        self.finder.reset()
        self.smoother.reset()
        self._aligned_ids.clear()
        self.frame_index = 0

    def close(self) -> None:
        """Stop the background detection thread (after the detection in flight); safe to call twice.

        Every entry point calls it (or uses ``with FramePipeline(config) as pipeline:``) so that
        no worker thread outlives the run. A closed pipeline can still process frames: the
        thread starts again when a background detection is next needed.
        """
        self.finder.close()

    def __enter__(self) -> "FramePipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
