"""FramePipeline's contract: any Classifier slots in, only live settings change live, no process-wide side effects."""
import numpy as np
import pytest
import torch

from fer_ros.config import PipelineConfig
from fer_ros.device import set_torch_threads
from fer_ros.errors import FerError
from fer_ros.models.classifier import Classifier
from fer_ros.models.inference import EmotionClassifier
from fer_ros.pipeline import FramePipeline
from fer_ros.types import Classification


class ConstantClassifier:
    """Another runtime in miniature: no torch, fixed answers, records the crops it was given."""

    class_names = ["calm", "excited"]
    input_size = 40
    align_template = None
    is_trained = True

    def __init__(self):
        self.seen: list[tuple] = []

    def describe(self) -> str:
        return "constant"

    def classify(self, faces):
        self.seen.append(tuple(f.shape for f in faces))
        return [Classification(np.array([0.2, 0.8], np.float32)) for _ in faces]


def cpu_config(tiny_checkpoint=None) -> PipelineConfig:
    config = PipelineConfig()
    config.detector.device = "cpu"
    if tiny_checkpoint:
        config.classifier.weights = [tiny_checkpoint]
    return config


def test_the_torch_classifier_implements_the_protocol(tiny_checkpoint):
    classifier = EmotionClassifier([tiny_checkpoint], torch.device("cpu"))
    assert isinstance(classifier, Classifier)
    assert classifier.input_size == 48 and classifier.align_template is None
    out = classifier.classify([np.zeros((48, 48, 3), np.uint8)] * 2)
    assert len(out) == 2 and out[0].probabilities.shape == (7,)


def test_any_classifier_slots_into_the_pipeline(astronaut):
    fake = ConstantClassifier()
    assert isinstance(fake, Classifier)
    pipeline = FramePipeline(cpu_config(), classifier=fake)
    result = pipeline.process(astronaut, 0.0)
    assert result.class_names == ["calm", "excited"] and pipeline.weights_info == "constant"
    assert len(result.faces) == 1 and result.faces[0].raw_label == "excited"
    assert fake.seen == [((40, 40, 3),)]  # the aligner produced the classifier's input size


def test_classifier_device_follows_the_detector_unless_set(tiny_checkpoint):
    config = cpu_config(tiny_checkpoint)
    assert FramePipeline(config).device == torch.device("cpu")
    config.classifier.device = "cuda:0"
    if not torch.cuda.is_available():
        with pytest.raises(FerError, match="CUDA is not available"):
            FramePipeline(config)
    config.classifier.device = "gpu"
    with pytest.raises(FerError, match="unknown device 'gpu' for setting 'classifier.device'"):
        FramePipeline(config)


def test_set_changes_live_settings_and_refuses_fixed_ones_with_the_reason(astronaut):
    pipeline = FramePipeline(cpu_config(), classifier=ConstantClassifier())
    assert len(pipeline.process(astronaut, 0.0).faces) == 1
    pipeline.reset()
    pipeline.set("detector.min_face_size", 500)  # live: the astronaut's face is ~90 px
    assert pipeline.process(astronaut, 0.0).faces == []
    pipeline.set("smoother.hysteresis", "1.5")
    assert pipeline.config.smoother.hysteresis == 1.5
    for name, value, reason in [("classifier.mirror", True, "traced"), ("classifier.fusion", "product", "traced"),
                                ("classifier.half", True, "traced"), ("detector.thresholds", "0.5,0.5,0.5", "cascade"),
                                ("classifier.threads", 2, "process-wide"), ("detector.device", "cpu", "loaded onto it")]:
        with pytest.raises(FerError, match=f"'{name}' cannot change on a running pipeline.*{reason}"):
            pipeline.set(name, value)
    assert pipeline.config.classifier.mirror == "auto"  # the default, unchanged by the refused set
    with pytest.raises(FerError, match="unknown setting 'smoother.windw'"):
        pipeline.set("smoother.windw", 1.0)


def test_building_a_pipeline_leaves_torch_threads_alone(tiny_checkpoint):
    before = torch.get_num_threads()
    config = cpu_config(tiny_checkpoint)
    config.classifier.threads = before + 1
    FramePipeline(config)
    assert torch.get_num_threads() == before
    try:
        set_torch_threads(before + 1)  # the entry points' job
        assert torch.get_num_threads() == before + 1
        set_torch_threads(0)  # 0 leaves it
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(FerError, match="whole number"):
        set_torch_threads(-1)


@pytest.mark.parametrize("argv, needle", [
    (["detect", "photo.jpg", "--detect-every", "0"], "'detect_every' must be in [1, 100]; got 0"),
    (["detect", "photo.jpg", "--max-frames", "-3"], "--max-frames must be 0 (all) or positive"),
    (["demo", "--frames", "0"], "--frames must be at least 1"),
])
def test_cli_counts_out_of_range_are_refused_not_ignored(capsys, argv, needle):
    from fer_ros.cli import main as cli

    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.splitlines()) == 1
