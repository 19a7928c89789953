"""Property tests over what users and cameras hand us: every input ends in a result or a FerError.

Settings typed on the command line and config files, raw and compressed image messages of any
size, step, encoding and length, checkpoint files cut short or with flipped bytes, and bag files
truncated anywhere. Hypothesis draws the inputs (the same ones on CI, where CI is set); a failure
prints the smallest input that raised anything other than FerError.
"""
import argparse
import array
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from fer_ros.commands._common import parse_set_option, pipeline_config
from fer_ros.config import PipelineConfig, iter_settings, set_setting
from fer_ros.errors import FerError
from fer_ros.messages.convert import SUPPORTED_ENCODINGS, compressed_msg_to_rgb, image_msg_to_rgb
from fer_ros.parameters.files import read_settings_file

CASES = settings(max_examples=300, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SETTINGS = {name: (value, f) for name, value, f in iter_settings(PipelineConfig())}


def one_line_fer_error(exc: FerError) -> None:
    event("FerError")  # --hypothesis-show-statistics counts how the cases ended
    text = str(exc)
    assert text.strip() and "\n" not in text, f"FerError should be one informative line: {text!r}"


# --- settings: --set and --config ----------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(["0.6,0.7,0.8", "2,2,2", "a.pt, b.pt", "cpu", "cuda:x", "ema", ""]))
yaml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=6)
setting_names = st.sampled_from(sorted(SETTINGS)) | st.text(max_size=20)


def _check_applied(config: PipelineConfig, name: str) -> None:
    """A setting that was accepted has its declared type and range."""
    value = getattr(getattr(config, name.split(".")[0]), name.split(".")[1]) if "." in name else getattr(config, name)
    default, f = SETTINGS[name]
    assert type(value) is type(default), (name, value)
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, (int, float)):
            assert np.isfinite(v)
            assert f.metadata.get("min") is None or v >= f.metadata["min"]
            assert f.metadata.get("max") is None or v <= f.metadata["max"]


@CASES
@given(name=setting_names, value=yaml_values)
def test_any_value_for_any_setting_is_taken_checked_or_refused(name, value):
    config = PipelineConfig()
    try:
        set_setting(config, name, value)
    except FerError as exc:
        one_line_fer_error(exc)
        return
    _check_applied(config, name)
    try:
        config.validate()
    except FerError as exc:  # e.g. two thresholds: each in range, but not three of them
        one_line_fer_error(exc)


def cli_args(config=None, items=()):
    return argparse.Namespace(config=config, set=list(items), weights=None, device=None, detect_every=None)


set_items = st.one_of(
    st.text(max_size=40),
    st.builds(lambda n, v: f"{n}={v}", setting_names, st.text(max_size=20)),
    st.builds(lambda n, v: f"{n}={yaml.safe_dump(v, default_flow_style=True).strip()}", st.sampled_from(sorted(SETTINGS)), yaml_values),
)


@CASES
@given(items=st.lists(set_items, max_size=4))
def test_set_options_as_typed_give_a_valid_config_or_one_line(items):
    try:
        config = pipeline_config(cli_args(items=items))
    except FerError as exc:
        one_line_fer_error(exc)
        return
    for item in items:
        _check_applied(config, parse_set_option(item)[0])


def test_set_options_users_typed():
    config = pipeline_config(cli_args(items=["detector.thresholds=0.6,0.7,0.8", "classifier.weights=a.pt, b.pt"]))
    assert config.detector.thresholds == [0.6, 0.7, 0.8] and config.classifier.weights == ["a.pt", "b.pt"]
    assert pipeline_config(cli_args(items=["detector.thresholds=[0.5, 0.6, 0.7]"])).detector.thresholds == [0.5, 0.6, 0.7]
    for item, needle in [("detector.thresholds=2,2,2", "must be in [0.0, 1.0]"), ("detector.thresholds=0.6,0.7", "three numbers"),
                         ("detector.min_face_size=.nan", "whole number"), ("annotate.show_landmarks=[1]", "bool"),
                         ("detector.device=tpu", "unknown device 'tpu'"), ("nonsense", "NAME=VALUE")]:
        with pytest.raises(FerError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            pipeline_config(cli_args(items=[item]))


documents = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    yaml_values.map(lambda v: yaml.safe_dump(v).encode()),
    st.dictionaries(st.sampled_from(sorted(SETTINGS)), yaml_values, max_size=4).map(
        lambda d: yaml.safe_dump({"fer_node": {"ros__parameters": d}} if len(d) % 2 else d).encode()),
)


@CASES
@given(document=documents)
def test_any_config_file_gives_settings_or_one_line(tmp_path, document):
    path = tmp_path / "settings.yaml"
    path.write_bytes(document)
    try:
        config = pipeline_config(cli_args(config=str(path)))
    except FerError as exc:
        one_line_fer_error(exc)
        return
    assert isinstance(config, PipelineConfig)


def test_config_files_users_give(tmp_path):
    for content, needle in [(open("/etc/passwd", "rb").read() if os.path.exists("/etc/passwd") else b"root:x:0:0",
                             "not a mapping"), (b"- a\n- b\n", "not a mapping"), (b"\xff\xfe\x00binary", "not text"),
                            (b"detector: [1, 2]", "unknown setting 'detector'"), (b"a: [", "not valid YAML")]:
        path = tmp_path / "c.yaml"
        path.write_bytes(content)
        with pytest.raises(FerError, match=needle):
            pipeline_config(cli_args(config=str(path)))
    with pytest.raises(FerError, match="cannot read settings file"):
        read_settings_file(str(tmp_path))
    path.write_bytes(b"# only a comment\n")
    assert read_settings_file(str(path)) == {}


# --- image messages ------------------------------------------------------------------------------

def _data_container(raw: bytes, kind: str):
    return {"bytes": raw, "numpy": np.frombuffer(raw, np.uint8), "array": array.array("B", raw), "list": list(raw)}[kind]


image_messages = st.builds(
    lambda encoding, width, height, pad, extra, bigendian, kind, seed: (encoding, width, height, pad, extra, bigendian, kind, seed),
    st.sampled_from(SUPPORTED_ENCODINGS) | st.text(max_size=10),
    st.integers(-2, 40), st.integers(-2, 30), st.integers(-8, 12), st.integers(-64, 16), st.booleans(),
    st.sampled_from(["bytes", "numpy", "array", "list"]), st.integers(0, 2**32 - 1))


@settings(CASES, max_examples=1500)
@given(spec=image_messages)
def test_raw_image_messages_of_any_shape_convert_or_refuse(spec):
    encoding, width, height, pad, extra, bigendian, kind, seed = spec
    bytes_per_pixel = {"mono8": 1, "mono16": 2, "rgb16": 6, "bgr16": 6, "rgba8": 4, "bgra8": 4, "yuv422": 2,
                       "yuv422_yuy2": 2}.get(encoding, 1 if encoding.startswith("bayer") else 3)
    step = max(width, 0) * bytes_per_pixel + pad
    size = max(step * max(height, 0) + extra, 0)
    raw = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    msg = SimpleNamespace(encoding=encoding, width=width, height=height, step=step, is_bigendian=int(bigendian),
                          data=_data_container(raw, kind))
    try:
        rgb = image_msg_to_rgb(msg)
    except FerError as exc:
        one_line_fer_error(exc)
        return
    event("converted")
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous


@pytest.fixture(scope="module")
def encoded_faces(astronaut):
    from fer_ros.imageio import encode_rgb

    small = np.ascontiguousarray(astronaut[::8, ::8])
    return [encode_rgb(small, "jpeg", 80), encode_rgb(small, "png"), encode_rgb(small[..., :1].repeat(3, 2), "jpeg")]


compressed_damage = st.tuples(st.integers(0, 2), st.sampled_from(["truncate", "flip", "garbage"]),
                              st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=8), st.binary(max_size=64))


def _damaged(data: bytes, how: str, cut: int, flips: list, garbage: bytes) -> bytes:
    if how == "truncate":
        return data[:cut % (len(data) + 1)]
    if how == "flip":
        out = bytearray(data)
        for k in flips:
            out[k % len(out)] ^= 1 + k % 255
        return bytes(out)
    return garbage


@settings(CASES, max_examples=400)
@given(damage=compressed_damage)
def test_compressed_images_cut_or_flipped_decode_or_refuse(encoded_faces, damage):
    which, how, cut, flips, garbage = damage
    msg = SimpleNamespace(format="jpeg" if which != 1 else "png", data=_damaged(encoded_faces[which], how, cut, flips, garbage))
    try:
        rgb = compressed_msg_to_rgb(msg)
    except FerError as exc:
        one_line_fer_error(exc)
        return
    event("decoded")
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8


# --- checkpoint files ----------------------------------------------------------------------------

file_damage = st.tuples(st.sampled_from(["truncate", "flip"]), st.integers(0, 10**7),
                        st.lists(st.integers(0, 10**7), min_size=1, max_size=4))


@settings(CASES, max_examples=300)
@given(damage=file_damage)
def test_checkpoints_cut_or_flipped_load_or_refuse(tiny_checkpoint, tmp_path, damage):
    from fer_ros.models.checkpoint import LoadedModel, load_checkpoint

    how, cut, flips = damage
    data = open(tiny_checkpoint, "rb").read()
    path = tmp_path / "damaged.pt"
    path.write_bytes(_damaged(data, how, cut, flips, b""))
    try:
        loaded = load_checkpoint(str(path))
    except FerError as exc:
        one_line_fer_error(exc)
        return
    event("loaded")
    assert isinstance(loaded, LoadedModel) and len(loaded.class_names) == loaded.model.cfg.num_classes


# --- frame stamps --------------------------------------------------------------------------------

stamps = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12), st.booleans(),
                   st.text(max_size=5), st.just([1.0]))


@pytest.fixture(scope="module")
def fake_classifier_pipeline():
    from test_pipeline_api import ConstantClassifier, cpu_config

    from fer_ros.pipeline import FramePipeline

    return FramePipeline(cpu_config(), classifier=ConstantClassifier())


@settings(CASES, max_examples=100)
@given(sequence=st.lists(stamps, min_size=1, max_size=5))
def test_frames_with_any_stamps_give_results_or_refuse(astronaut, fake_classifier_pipeline, sequence):
    pipeline = fake_classifier_pipeline
    pipeline.reset()
    face = np.ascontiguousarray(astronaut[20:200, 130:310])  # the face and a margin: detection stays quick
    for stamp in sequence:
        try:
            result = pipeline.process(face, stamp)
        except FerError as exc:
            one_line_fer_error(exc)
            continue
        event("processed")
        assert np.isfinite(result.stamp) and all(0.0 <= f.confidence <= 1.0 for f in result.faces)


# --- bags ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_bags(tmp_path_factory, store, astronaut):
    from fer_ros.bags.bagtools import SampleBagSpec, write_frames_bag

    root = tmp_path_factory.mktemp("bags")
    frames = [(i / 10, np.ascontiguousarray(astronaut[::4, ::4])) for i in range(3)]
    bags = {}
    for storage, compressed in [("sqlite3", False), ("mcap", True)]:
        path = root / storage
        write_frames_bag(path, frames, store, SampleBagSpec(storage=storage, compressed=compressed))
        bags[storage] = path
    return bags


@pytest.fixture(scope="module")
def quick_pipeline(tiny_checkpoint):
    from fer_ros.pipeline import FramePipeline

    config = PipelineConfig()
    config.detector.device = "cpu"
    config.classifier.weights = [tiny_checkpoint]
    return FramePipeline(config)


@settings(CASES, max_examples=200)
@given(storage=st.sampled_from(["sqlite3", "mcap"]), target=st.sampled_from(["storage", "storage", "metadata"]),
       damage=file_damage)
def test_bags_truncated_or_flipped_anywhere_replay_or_refuse(small_bags, quick_pipeline, store, tmp_path, storage, target,
                                                              damage):
    from fer_ros.bags.replay import ReplayOptions, replay_bag

    how, cut, flips = damage
    bag = tmp_path / "bag"
    shutil.rmtree(bag, ignore_errors=True)
    shutil.copytree(small_bags[storage], bag)
    files = [p for p in bag.iterdir() if (p.name == "metadata.yaml") == (target == "metadata")]
    assume(files)
    victim = files[0]
    victim.write_bytes(_damaged(victim.read_bytes(), how, cut, flips, b""))
    try:
        result = replay_bag(str(bag), quick_pipeline, ReplayOptions(progress=False), store)
    except FerError as exc:
        event("FerError")
        assert str(exc).strip()
        return
    event(f"replayed {len(result.frames)} of 3 frames")
    assert result.messages <= 3 and len(result.frames) + sum(result.bad.counts.values()) == result.messages


# --- ground-truth label files, music mapping files, detection streams ------------------------------

label_files = st.one_of(
    st.binary(max_size=120),
    st.lists(st.lists(st.one_of(st.text(max_size=6), st.sampled_from(["frame", "stamp", "time", "label", "happy", "nan",
                                                                      "inf", "1e400", "-3", "0.5", "", "#x"])),
                      max_size=4), max_size=5).map(lambda rows: "\n".join(",".join(r) for r in rows).encode()),
)


@CASES
@given(content=label_files)
def test_any_label_csv_gives_labels_or_one_line(tmp_path, content):
    from fer_ros.bags.bagtools import Labels, read_label_csv

    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    try:
        labels = read_label_csv(path)
    except FerError as exc:
        one_line_fer_error(exc)
        return
    event("read")
    assert isinstance(labels, Labels) and labels.keys == sorted(labels.keys) and all(np.isfinite(labels.keys))


music_keys = st.sampled_from(["strategy", "follow", "track_id", "min_confidence", "min_stable", "dwell", "emotions",
                              "playlists", "uplift", "no_face", "backend", "command", "mpris", "shuffle"]) | st.text(max_size=6)


@CASES
@given(document=st.one_of(st.binary(max_size=100), yaml_values.map(lambda v: yaml.safe_dump(v).encode()),
                          st.dictionaries(music_keys, yaml_values, max_size=4).map(lambda d: yaml.safe_dump(d).encode())))
def test_any_music_mapping_file_gives_a_config_or_one_line(tmp_path, document):
    from fer_ros.music.mapping import MusicConfig, load_config

    path = tmp_path / "music.yaml"
    path.write_bytes(document)
    try:
        config = load_config(path)
    except FerError as exc:
        one_line_fer_error(exc)
        return
    event("loaded")
    assert isinstance(config, MusicConfig)


@CASES
@given(frame=yaml_values | st.dictionaries(st.sampled_from(["stamp", "faces", "header"]), yaml_values, max_size=3)
       | st.builds(lambda stamp, faces: {"stamp": stamp, "faces": faces}, scalars,
                   st.lists(st.dictionaries(st.sampled_from(["id", "label", "confidence", "bbox", "stable", "probabilities"]),
                                            yaml_values, max_size=6), max_size=3)))
def test_any_detection_record_gives_an_observation_or_one_line(frame):
    from fer_ros.music.policy import MusicPolicy, Observation, as_observation

    try:
        observation = as_observation(frame)
        MusicPolicy().step(observation)
    except FerError as exc:
        one_line_fer_error(exc)
        return
    event("observed")
    assert isinstance(observation, Observation)


npz_arrays = st.fixed_dictionaries({
    "n": st.integers(0, 5), "extra": st.sampled_from([0, 0, 0, 1, -1]),
    "image_shape": st.sampled_from([(48, 48), (48, 48, 3), (10,), (48, 48, 4)]),
    "image_dtype": st.sampled_from([np.uint8, np.uint8, np.float32, np.int64]),
    "label_dtype": st.sampled_from([np.int64, np.int64, np.int32, np.float64, np.bool_]),
    "label_range": st.sampled_from([(0, 7), (0, 7), (-2, 10)]),
    "usage": st.sampled_from([["PublicTest"], ["PublicTest", "Training"], [1, 2]]),
    "votes": st.sampled_from([None, (10,), (3,)]),
    "split": st.sampled_from([None, "PublicTest", "Nope"]), "label_set": st.sampled_from(["fer2013", "ferplus"]),
    "seed": st.integers(0, 1000),
})


@CASES
@given(spec=npz_arrays)
def test_any_fer_npz_layout_loads_or_refuses(tmp_path, spec):
    from fer_ros.learning.datasets import FaceDataset, load_dataset

    rng, n = np.random.default_rng(spec["seed"]), spec["n"]
    arrays = {"images": rng.integers(0, 256, (max(n + spec["extra"], 0), *spec["image_shape"])).astype(spec["image_dtype"]),
              "labels": rng.integers(*spec["label_range"], n).astype(spec["label_dtype"]),
              "usage": np.array([spec["usage"][i % len(spec["usage"])] for i in range(n)])}
    if spec["votes"] is not None:
        arrays["ferplus_votes"] = rng.integers(0, 10, (n, *spec["votes"])).astype(np.uint8)
    path = tmp_path / "faces.npz"
    np.savez(path, **arrays)
    try:
        ds = load_dataset(str(path), spec["split"], spec["label_set"])
    except FerError as exc:
        one_line_fer_error(exc)
        return
    event("loaded")
    assert isinstance(ds, FaceDataset) and len(ds) > 0 and ds.labels.max() < len(ds.class_names)
