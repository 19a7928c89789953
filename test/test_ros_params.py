"""fer_node's parameters: derived from every config setting, mirrored by config/fer.yaml, validated."""
from pathlib import Path

import pytest
import yaml

from fer_ros.config import PipelineConfig, SmootherConfig, iter_settings
from fer_ros.errors import FerError
from fer_ros.parameters.files import load_params_file
from fer_ros.parameters.node import (
    NodeSettings,
    apply_params,
    load_fer_yaml,
    node_param_specs,
    param_specs,
    pipeline_param_specs,
    render_params_yaml,
    settings_from_params,
)

FER_YAML = Path(__file__).resolve().parents[1] / "config" / "fer.yaml"
PYTHON_TYPE = {"bool": bool, "int": int, "float": float, "str": str, "str_list": str, "float_list": list}


def test_every_setting_is_a_parameter():
    names = [s.name for s in param_specs()]
    assert len(names) == len(set(names))
    config_names = {name for name, _, _ in iter_settings(PipelineConfig())}
    node_names = {name for name, _, _ in iter_settings(NodeSettings())}
    assert {s.name for s in pipeline_param_specs()} == config_names
    assert {s.name for s in node_param_specs()} == node_names
    assert set(names) == config_names | node_names


def test_specs_carry_types_ranges_and_live_flags():
    specs = {s.name: s for s in param_specs()}
    assert specs["detector.thresholds"].kind == "float_list" and specs["detector.thresholds"].default == [0.6, 0.7, 0.8]
    assert specs["classifier.weights"].kind == "str_list" and specs["classifier.weights"].default == ""
    assert specs["detector.min_face_size"].kind == "int" and (specs["detector.min_face_size"].min, specs["detector.min_face_size"].max) == (8, 1000)
    assert specs["smoother.hysteresis"].kind == "float" and specs["smoother.hysteresis"].live
    assert not specs["detector.device"].live and not specs["image_topic"].live
    assert specs["smoother.method"].choices == ("ema", "window")
    assert "one of: ema, window" in specs["smoother.method"].description
    for spec in specs.values():
        assert spec.help, f"{spec.name} has no help text"
        assert ("live" if spec.live else "read-only") in spec.description
        assert isinstance(spec.default, PYTHON_TYPE[spec.kind]), spec.name


def test_fer_yaml_lists_exactly_the_declared_parameters_at_their_defaults():
    values = load_params_file(FER_YAML)
    specs = {s.name: s for s in param_specs()}
    assert set(values) == set(specs), f"missing: {set(specs) - set(values)}, unknown: {set(values) - set(specs)}"
    for name, value in values.items():
        # rcl types a parameter from the YAML scalar, so 1 (int) for a double would be rejected
        assert type(value) is PYTHON_TYPE[specs[name].kind], f"{name}: {value!r}"
        assert value == specs[name].default, name


def test_fer_yaml_parses_to_the_default_configuration():
    pipeline, node = load_fer_yaml(FER_YAML)
    assert pipeline == PipelineConfig()
    assert node == NodeSettings()


def test_fer_yaml_comments_every_parameter_and_is_up_to_date():
    text = FER_YAML.read_text()
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#") and line.strip() not in ("fer_node:", "ros__parameters:"):
            assert "  # " in line and len(line.split("  # ", 1)[1]) > 10, f"uncommented line: {line!r}"
    assert text == render_params_yaml(), "config/fer.yaml is stale: python -m fer_ros.parameters.node > config/fer.yaml"


def test_settings_from_ros_values():
    pipeline, node = settings_from_params({"classifier.weights": " a.pt, b.pt ,", "detector.thresholds": [0.5, 0.6, 0.7],
                                           "smoother.window": 2, "image_topic": "/robot/cam/image", "compressed": True})
    assert pipeline.classifier.weights == ["a.pt", "b.pt"]
    assert pipeline.detector.thresholds == [0.5, 0.6, 0.7]
    assert pipeline.smoother.window == 2.0 and isinstance(pipeline.smoother.window, float)
    assert (node.image_topic, node.compressed) == ("/robot/cam/image", True)
    assert settings_from_params({"classifier.weights": ""})[0].classifier.weights == []
    # classifier.mirror is auto / true / false; a YAML or launch-file true reaches it as the string "true"
    specs = {s.name: s for s in param_specs()}
    assert specs["classifier.mirror"].to_ros(True) == "true" and specs["classifier.mirror"].accepts("true")
    assert settings_from_params({"classifier.mirror": True})[0].classifier.mirror == "true"
    assert settings_from_params({"classifier.mirror": "false"})[0].classifier.mirror == "false"


@pytest.mark.parametrize("values, message", [
    ({"detector.min_face_size": 2}, "detector.min_face_size"),
    ({"smoother.method": "median"}, "ema, window"),
    ({"detector.thresholds": [0.5, 0.6]}, "three numbers"),
    ({"detector.min_size": 20}, "unknown fer_node parameter 'detector.min_size'"),
    ({"warn_latency_ms": 500.0, "error_latency_ms": 100.0}, "error_latency_ms"),
    ({"image_topic": " "}, "image_topic"),
    ({"classifier.mirror": "yes please"}, "auto, true, false"),
])
def test_invalid_values_are_rejected_with_the_name(values, message):
    with pytest.raises(FerError, match=message):
        settings_from_params(values)


def test_apply_params_is_all_or_nothing_and_in_place():
    pipeline, node = settings_from_params({})
    smoother = pipeline.smoother  # stages hold this object: changes must land in it
    with pytest.raises(FerError, match="tracker.iou_threshold"):
        apply_params(pipeline, node, {"smoother.hysteresis": 1.0, "tracker.iou_threshold": 2.0})
    assert smoother.hysteresis == SmootherConfig().hysteresis
    apply_params(pipeline, node, {"smoother.hysteresis": 1.0, "publish_annotated": False})
    assert pipeline.smoother is smoother and smoother.hysteresis == 1.0
    assert node.publish_annotated is False


@pytest.mark.parametrize("key", ["fer_node", "/fer_node", "/robot1/fer_node", "/**", "/**/fer_node"])
def test_params_file_keys_rcl_would_match(tmp_path, key):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({key: {"ros__parameters": {"smoother": {"hysteresis": 2.0}}},
                                    "other_node": {"ros__parameters": {"x": 1}}}))
    assert load_params_file(path) == {"smoother.hysteresis": 2.0}


def test_params_file_errors(tmp_path):
    with pytest.raises(FerError, match="cannot read"):
        load_params_file(tmp_path / "missing.yaml")
    (tmp_path / "other.yaml").write_text("other_node:\n  ros__parameters:\n    x: 1\n")
    with pytest.raises(FerError, match="no parameters for fer_node"):
        load_params_file(tmp_path / "other.yaml")
    (tmp_path / "bad.yaml").write_text("fer_node: [unclosed\n")
    with pytest.raises(FerError, match="not valid YAML"):
        load_params_file(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("fer_node:\n  ros__parameters:\n    smoother:\n      hysterisis: 1.0\n")
    with pytest.raises(FerError, match="typo.yaml: unknown fer_node parameter 'smoother.hysterisis'"):
        load_fer_yaml(tmp_path / "typo.yaml")


def test_specs_accept_only_their_ros_type():
    specs = {s.name: s for s in param_specs()}
    assert specs["smoother.hysteresis"].accepts(1.5)
    assert not specs["smoother.hysteresis"].accepts("1.5") and not specs["smoother.hysteresis"].accepts(True)
    assert specs["detect_every"].accepts(3) and not specs["detect_every"].accepts(3.0) and not specs["detect_every"].accepts(False)
    assert specs["publish_annotated"].accepts(False) and not specs["publish_annotated"].accepts(0)
    assert specs["classifier.weights"].accepts("a.pt,b.pt") and not specs["classifier.weights"].accepts(["a.pt"])
    assert specs["detector.thresholds"].accepts([0.5, 0.6, 0.7]) and not specs["detector.thresholds"].accepts(0.5)
    for spec in specs.values():
        assert spec.accepts(spec.default), spec.name


def test_music_controller_parameters_are_derived_and_validated():
    from fer_ros.music.parameters import MusicNodeSettings, music_param_specs, music_settings_from_params

    specs = {s.name: s for s in music_param_specs()}
    assert set(specs) == {"config_file", "backend", "dry_run", "follow", "strategy", "track_id"}
    assert all(not s.live and s.help for s in specs.values())
    assert "one of: '', log, mpris, command" in specs["backend"].description
    assert music_settings_from_params({"backend": "log", "track_id": 3}) == MusicNodeSettings(backend="log", track_id=3)
    with pytest.raises(FerError, match="backend"):
        music_settings_from_params({"backend": "vlc"})
    with pytest.raises(FerError, match="track_id"):
        music_settings_from_params({"track_id": -5})
    with pytest.raises(FerError, match="unknown music_controller parameter 'volume'"):
        music_settings_from_params({"volume": 3})


def test_ros_standard_parameters_in_a_params_file_are_accepted_and_others_still_refused(tmp_path):
    from fer_ros.parameters.node import is_ros_standard

    path = tmp_path / "fer.yaml"
    path.write_text("fer_node:\n  ros__parameters:\n    use_sim_time: true\n    smoother.hysteresis: 1.5\n"
                    "    qos_overrides:\n      /emotions:\n        publisher:\n          reliability: best_effort\n")
    values = load_params_file(path)
    assert values["qos_overrides./emotions.publisher.reliability"] == "best_effort"
    assert is_ros_standard("use_sim_time") and not is_ros_standard("smoother.hysteres")
    config, _ = settings_from_params(values)
    assert config.smoother.hysteresis == 1.5
    with pytest.raises(FerError, match="unknown fer_node parameter 'smoother.hysteres'"):
        settings_from_params({"smoother.hysteres": 1.0})


def test_param_arguments_reach_a_real_node_with_their_ros_types():
    """What fer.launch.py hands fer_node (-p name:=value) gives the node every value, typed, in any namespace."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2) not installed")
    from fer_ros.parameters.node import param_arguments

    values = {s.name: s.default for s in param_specs()}
    values.update({"classifier.mirror": "true", "classifier.weights": "a.pt,b.pt", "image_topic": "/cam/image",
                   "use_sim_time": True, "qos_overrides./emotions.publisher.reliability": "best_effort"})
    context = rclpy.Context()
    rclpy.init(args=["fer_node", "--ros-args", *param_arguments(values)], context=context)
    try:
        node = rclpy.create_node("fer_node", namespace="robot1", context=context, automatically_declare_parameters_from_overrides=True)
        got = {name: node.get_parameter(name).value for name in values}
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    for name, value in values.items():
        assert type(got[name]) is type(value) or isinstance(value, list), (name, got[name], value)
        assert (list(got[name]) if isinstance(value, list) else got[name]) == value, name
