"""What the pipeline needs from an expression classifier, whatever runs it (PyTorch, ONNX, OpenVINO).

``FramePipeline`` talks to its classifier only through this protocol: the class names it
publishes, the crop size and landmark template the aligner must produce, and one batched
``classify`` call per frame. ``fer_ros.models.inference.EmotionClassifier`` (PyTorch checkpoints) is
one implementation; another runtime only has to provide these members to slot in
(``FramePipeline(config, classifier=...)``). No torch import here, so a runtime without
PyTorch can implement it.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from fer_ros.types import Classification


@runtime_checkable
class Classifier(Protocol):
    """A batched face-expression classifier.

    ``align_template``: the 5 landmarks (eyes, nose, mouth corners) in [0, 1] crop units that
    the model's training crops were framed by, or None for the aligner's default template.
    """

    @property
    def class_names(self) -> Sequence[str]: ...

    @property
    def input_size(self) -> int: ...

    @property
    def align_template(self) -> np.ndarray | None: ...

    @property
    def is_trained(self) -> bool: ...

    def describe(self) -> str:
        """One line for logs: which model(s), their input size and classes."""
        ...

    def classify(self, faces: list[np.ndarray]) -> list[Classification]:
        """``faces``: aligned uint8 RGB crops of ``input_size`` pixels; one result per face, same order."""
        ...
