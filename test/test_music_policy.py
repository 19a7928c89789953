"""Music policy and mapping file: scripted emotion streams with explicit stamps, exact decisions."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fer_ros.emotions import canonical_emotion
from fer_ros.errors import FerError
from fer_ros.music.mapping import MusicConfig, NoFaceConfig, config_from_dict, load_config
from fer_ros.music.policy import MusicPolicy, as_observation, choose_face
from fer_ros.types import FaceResult, FrameResult

REPO = Path(__file__).resolve().parents[1]
DT = 0.1  # seconds between scripted frames


def face(label: str, stable_for: float | None, track: int = 1, box=(0, 0, 100, 100), conf: float = 0.9,
         stable: bool = True) -> dict:
    """One face as `fer-ros detect` prints it."""
    out = {"id": track, "bbox": list(box), "label": label, "confidence": conf, "stable": stable}
    if stable_for is not None:
        out["stable_for"] = stable_for
    return out


def script(segments: list[tuple[str | None, float]], start: float = 0.0) -> list[dict]:
    """Frames every DT seconds: (label, duration) segments; label None = nobody in view.

    stable_for counts from the start of the segment, as the recogniser reports it.
    """
    frames, t = [], start
    for label, duration in segments:
        begin = t
        for _ in range(round(duration / DT)):
            faces = [] if label is None else [face(label, round(t - begin, 6))]
            frames.append({"frame": len(frames), "stamp": round(t, 6), "faces": faces})
            t = round(t + DT, 6)
    return frames


def run(policy: MusicPolicy, frames: list[dict]) -> list:
    return [d for d in (policy.step(f) for f in frames) if d is not None]


def make(**kwargs) -> MusicPolicy:
    settings = dict(min_stable_s=1.0, cooldown_s=0.0, no_face=NoFaceConfig(after_s=2.0, action="pause"))
    settings.update(kwargs)
    return MusicPolicy(MusicConfig(**settings))


def test_sustained_emotion_is_played_once_it_held_min_stable_s():
    decisions = run(make(), script([("happy", 3.0)]))
    assert [(d.stamp, d.action, d.emotion, d.playlist, d.item, d.track_id) for d in decisions] == [
        (pytest.approx(1.0), "play", "happy", "happy", "upbeat pop", 1)]
    assert decisions[0].strategy == "match"


def test_flicker_is_ignored():
    frames = script([("happy", 3.0), ("sad", 0.5), ("happy", 3.0)])
    decisions = run(make(), frames)
    assert [(d.action, d.emotion) for d in decisions] == [("play", "happy")]


def test_unconfirmed_and_uncertain_labels_are_ignored():
    frames = [{"stamp": t * DT, "faces": [face("sad", 5.0, stable=False)]} for t in range(10)]
    frames += [{"stamp": 1 + t * DT, "faces": [face("uncertain", 5.0)]} for t in range(10)]
    assert run(make(), frames) == []


def test_sustained_change_is_followed_after_min_stable_s():
    decisions = run(make(), script([("happy", 3.0), ("sad", 3.0)]))
    assert [(d.stamp, d.action, d.emotion, d.playlist) for d in decisions] == [
        (pytest.approx(1.0), "play", "happy", "happy"), (pytest.approx(4.0), "play", "sad", "sad")]


def test_cooldown_defers_a_change_until_it_is_over():
    # happy plays at 1.0; sad is stable from 3.0 but the 5 s cooldown holds it until 6.0.
    decisions = run(make(cooldown_s=5.0), script([("happy", 2.0), ("sad", 6.0)]))
    assert [(d.stamp, d.emotion) for d in decisions] == [(pytest.approx(1.0), "happy"), (pytest.approx(6.0), "sad")]
    assert "after the cooldown" in decisions[1].reason


def test_change_that_ends_inside_the_cooldown_is_dropped():
    decisions = run(make(cooldown_s=5.0), script([("happy", 2.0), ("sad", 2.0), ("happy", 5.0)]))
    assert [(d.action, d.emotion) for d in decisions] == [("play", "happy")]


def test_no_face_pauses_after_after_s_and_resumes_when_a_face_returns():
    policy = make()
    decisions = run(policy, script([("happy", 3.0), (None, 4.0), ("happy", 1.0)]))
    # last face at 2.9 s, so the pause comes at 4.9 s; the face is back at 7.0 s.
    assert [(d.stamp, d.action, d.emotion, d.track_id, d.item) for d in decisions] == [
        (pytest.approx(1.0), "play", "happy", 1, "upbeat pop"),
        (pytest.approx(4.9), "pause", "", -1, "upbeat pop"),
        (pytest.approx(7.0), "play", "happy", 1, "upbeat pop")]
    assert "resuming" in decisions[2].reason and policy.state == "playing"


def test_no_face_keep_and_stop():
    keep = run(make(no_face=NoFaceConfig(after_s=2.0, action="keep")), script([("happy", 2), (None, 3), ("happy", 1)]))
    assert [(d.action, d.stamp) for d in keep] == [("play", pytest.approx(1.0)), ("keep", pytest.approx(3.9))]
    stop = run(make(no_face=NoFaceConfig(after_s=2.0, action="stop")), script([("happy", 2), (None, 3), ("happy", 1)]))
    assert [(d.action, d.stamp) for d in stop] == [
        ("play", pytest.approx(1.0)), ("stop", pytest.approx(3.9)), ("play", pytest.approx(5.0))]


def test_no_face_does_nothing_when_nothing_plays():
    assert run(make(), script([(None, 5.0), ("happy", 0.5), (None, 5.0)])) == []


def test_tick_applies_the_no_face_rule_when_observations_stop():
    policy = make()
    run(policy, script([("happy", 3.0)]))  # last face at 2.9 s
    assert policy.tick(4.8) is None
    decision = policy.tick(4.95)
    assert decision is not None and decision.action == "pause"
    assert policy.tick(6.0) is None  # once per absence


def test_round_robin_items_per_playlist():
    decisions = run(make(), script([("happy", 2.0), ("sad", 2.0), ("happy", 2.0), ("sad", 2.0), ("happy", 2.0)]))
    assert [d.item for d in decisions] == ["upbeat pop", "slow piano", "feel good funk", "melancholic strings",
                                           "upbeat pop"]


def test_uplift_and_match_choose_different_playlists_for_sad():
    match = run(make(strategy="match"), script([("sad", 2.0)]))
    uplift = run(make(strategy="uplift"), script([("sad", 2.0)]))
    assert (match[0].playlist, match[0].strategy) == ("sad", "match")
    assert (uplift[0].playlist, uplift[0].item, uplift[0].strategy) == ("uplift", "sunny acoustic", "uplift")


def test_uplift_keeps_the_music_when_the_target_is_already_playing():
    decisions = run(make(strategy="uplift"), script([("angry", 2.0), ("fear", 2.0)]))
    assert [(d.action, d.emotion, d.playlist) for d in decisions] == [("play", "angry", "calm"), ("keep", "fear", "calm")]


def test_emotion_without_playlist_keeps_the_music():
    config = MusicConfig(min_stable_s=1.0, cooldown_s=0.0, playlists={"happy": ["a.mp3"]})
    decisions = run(MusicPolicy(config), script([("happy", 2.0), ("disgust", 2.0)]))
    assert [(d.action, d.emotion, d.item) for d in decisions] == [("play", "happy", "a.mp3"), ("keep", "disgust", "a.mp3")]


def test_policy_measures_stability_itself_when_stable_for_is_missing():
    frames = [{"stamp": i * DT, "faces": [face("Happiness", None)]} for i in range(20)]
    decisions = run(make(), frames)
    assert [(d.stamp, d.emotion) for d in decisions] == [(pytest.approx(1.0), "happy")]


def test_stamps_jumping_back_restart_the_clocks():
    policy = make(cooldown_s=100.0)
    first = run(policy, script([("happy", 2.0)], start=50.0))
    # The source restarted (a looped bag): the cooldown from the first run must not block forever.
    again = run(policy, script([("sad", 2.0)], start=0.0))
    assert [d.emotion for d in first + again] == ["happy", "sad"]


TWO_FACES = [
    face("sad", 5.0, track=3, box=(0, 0, 200, 200), conf=0.6),  # largest
    face("happy", 5.0, track=7, box=(300, 0, 350, 50), conf=0.95),  # most confident
]


@pytest.mark.parametrize("follow, track_id, emotion, track", [
    ("largest", None, "sad", 3), ("most_confident", None, "happy", 7), ("track_id", 7, "happy", 7),
    ("track_id", 3, "sad", 3)])
def test_follow_picks_the_right_face(follow, track_id, emotion, track):
    decision = make(follow=follow, track_id=track_id).step({"stamp": 1.0, "faces": TWO_FACES})
    assert (decision.emotion, decision.track_id) == (emotion, track)


def test_follow_track_id_treats_other_faces_as_nobody():
    policy = make(follow="track_id", track_id=99)
    frames = [{"stamp": i * DT, "faces": TWO_FACES} for i in range(50)]
    assert run(policy, frames) == []
    assert choose_face(as_observation(frames[0]).faces, "track_id", 99) is None


def test_observation_adapter_accepts_detect_json_ros_dicts_and_frame_results():
    ros_like = {"stamp": {"sec": 12, "nanosec": 500_000_000},
                "faces": [{"track_id": 4, "roi": {"x_offset": 1, "y_offset": 2, "width": 30, "height": 40},
                           "label": "Sadness", "confidence": 0.8, "stable": True, "stable_for": 2.5}]}
    obs = as_observation(ros_like)
    assert obs.stamp == pytest.approx(12.5)
    assert (obs.faces[0].track_id, obs.faces[0].area, obs.faces[0].label) == (4, 1200.0, "Sadness")

    result = FrameResult(frame_index=0, stamp=3.0, image_size=(640, 480), class_names=["happy", "sad"], faces=[
        FaceResult(track_id=2, bbox=np.array([10, 10, 30, 50], np.float32), landmarks=np.zeros((5, 2), np.float32),
                   detection_score=0.99, label="happy", confidence=0.9, probabilities=np.array([0.9, 0.1]),
                   raw_label="happy", raw_probabilities=np.array([0.9, 0.1]), stable=True, stable_for=1.5,
                   detected=True)])
    obs = as_observation(result)
    assert (obs.stamp, obs.faces[0].area, obs.faces[0].stable_for) == (3.0, 800.0, 1.5)


@pytest.mark.parametrize("bad, words", [
    ({"faces": []}, "stamp"), ({"stamp": "soon", "faces": []}, "stamp"),
    ({"stamp": 1.0, "faces": [{"label": "happy"}]}, "'id'"), ({"stamp": 1.0, "faces": [{"id": 1}]}, "'label'"),
    ({"stamp": 1.0, "faces": [{"id": 1, "label": "sad", "bbox": [1, 2]}]}, "bbox"),
    ({"stamp": 1.0, "faces": [{"id": "x", "label": "sad"}]}, "wrong type")])
def test_observation_adapter_rejects_malformed_frames(bad, words):
    with pytest.raises(FerError, match=words):
        as_observation(bad)


# ---- mapping file ---------------------------------------------------------------------------

def test_shipped_config_file_equals_the_built_in_defaults():
    assert load_config(REPO / "config" / "music.yaml") == MusicConfig()


def test_synonyms_and_case_are_normalised():
    config = config_from_dict({"playlists": {"Happiness": ["x.mp3"], "SADNESS": "y.mp3", "calm": ["z"]},
                               "uplift": {"Anger": "calm"}, "strategy": "Uplift"})
    assert config.playlists == {"happy": ["x.mp3"], "sad": ["y.mp3"], "calm": ["z"]}
    assert config.uplift == {"angry": "calm"} and config.strategy == "uplift"
    assert canonical_emotion(" Surprised ") == "surprise"


@pytest.mark.parametrize("text, words", [
    ("strategy: calm\n", "strategy.*match, uplift"),
    ("tempo: 3\n", "unknown key 'tempo'"),
    ("follow: track_id\n", "track_id"),
    ("cooldown_s: -1\n", "cooldown_s"),
    ("no_face: {after_s: 1, action: sleep}\n", "no_face.action"),
    ("no_face: {wait: 1}\n", "no_face.wait"),
    ("playlists: {happy: [1, 2]}\n", "playlists.happy"),
    ("playlists: {happy: []}\n", "playlists.happy"),
    ("strategy: uplift\nplaylists: {happy: [a]}\nuplift: {sad: calm}\n", "uplift.sad.*'calm'"),
    ("uplift: {sleepy: calm}\n", "uplift.sleepy"),
    ("playlists: {calm: [a]}\n", "no playlist is named after an emotion"),
    ("command: {argv: 'mpv {item}'}\n", "not a shell string"),
    ("command: {argv: [mpv, song.mp3]}\n", "placeholder"),
    ("playlists: [happy\n", "not valid YAML"),
    ("- just a list\n", "mapping"),
])
def test_malformed_mapping_file_names_the_key(tmp_path, text, words):
    path = tmp_path / "music.yaml"
    path.write_text(text)
    with pytest.raises(FerError, match=words):
        load_config(path)


def test_missing_mapping_file_says_so(tmp_path):
    with pytest.raises(FerError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_are_validated_too():
    with pytest.raises(FerError, match="follow"):
        dataclasses.replace(MusicConfig(), follow="loudest")
