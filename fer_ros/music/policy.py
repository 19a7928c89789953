"""When to change the music: a ROS-free policy driven by timestamped emotion observations.

The policy follows one face, waits until its label has been stable for ``min_stable_s``,
keeps ``cooldown_s`` between playlist changes, and applies the no-face rule after
``no_face.after_s``. All timing uses the observation stamps (never the wall clock), so a
scripted stream, a video's JSON lines and a live ROS topic behave the same and tests are exact.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from fer_ros.emotions import canonical_emotion
from fer_ros.errors import FerError
from fer_ros.music.mapping import MusicConfig
from fer_ros.types import UNCERTAIN

log = logging.getLogger(__name__)

BACKWARD_TOLERANCE_S = 1.0  # a stamp further back than this means the source restarted (looped bag, new video)


@dataclass
class FaceObservation:
    """The few facts about one face the policy needs."""

    track_id: int
    area: float  # box area in pixels^2, for follow == "largest"
    label: str  # published (smoothed) label, or "uncertain"
    confidence: float = 0.0
    stable: bool = True  # False while the pipeline's hysteresis has not confirmed the label
    stable_for: float | None = None  # seconds the label has held; None: the policy measures it itself


@dataclass
class Observation:
    """All faces seen at one instant (an empty list when nobody is there)."""

    stamp: float  # seconds
    faces: list[FaceObservation] = field(default_factory=list)


@dataclass
class Decision:
    """What the player should do now, and why."""

    stamp: float
    action: str  # play | keep | pause | stop
    emotion: str  # emotion the decision followed ("" when no face)
    playlist: str  # playlist name ("" when none)
    item: str  # file, URI or search term ("" when none)
    track_id: int  # face followed, -1 when none
    strategy: str
    reason: str

    def to_json(self) -> dict:
        """The object `fer-ros music` prints per decision."""
        return {"stamp": round(self.stamp, 6), "action": self.action, "emotion": self.emotion,
                "track": self.track_id, "playlist": self.playlist, "item": self.item,
                "strategy": self.strategy, "reason": self.reason}


def _stamp(value: Any) -> float:
    if isinstance(value, Mapping):  # builtin_interfaces/Time as a dict, or a header
        if "stamp" in value:
            return _stamp(value["stamp"])
        sec = value.get("sec", value.get("secs"))
        nsec = value.get("nanosec", value.get("nsecs", 0))
        if sec is not None:
            return float(sec) + float(nsec) * 1e-9
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise FerError(f"observation stamp {value!r} is not a finite time; give 'stamp' in seconds "
                           "(as `fer-ros detect` prints it)")
        return float(value)
    raise FerError(f"observation stamp {value!r} is not a time in seconds; give 'stamp' as a number "
                   "(as `fer-ros detect` prints it)")


def _area(face: Mapping) -> float:
    if "area" in face:
        return float(face["area"])
    box = face.get("bbox", face.get("roi"))
    if isinstance(box, Mapping):
        if "width" in box and "height" in box:
            return float(box["width"]) * float(box["height"])
        box = [box.get(k, 0.0) for k in ("x1", "y1", "x2", "y2")]
    if box is None:
        return 0.0
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise FerError(f"face bbox {box!r} is not [x1, y1, x2, y2]; give the box in pixels") from None
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def face_from_dict(face: Mapping) -> FaceObservation:
    """One face from `fer-ros detect` JSON or a converted ROS Emotion (id or track_id, bbox or roi)."""
    if not isinstance(face, Mapping):
        raise FerError(f"a face entry must be an object, got {face!r}")
    track = face.get("id", face.get("track_id"))
    for key, value in (("id", track), ("label", face.get("label"))):
        if value is None:
            raise FerError(f"face entry {dict(face)!r} has no {key!r}; each face needs id (or track_id) and label")
    stable_for = face.get("stable_for")
    try:
        return FaceObservation(track_id=int(track), area=_area(face), label=str(face["label"]),
                               confidence=float(face.get("confidence", 0.0)), stable=bool(face.get("stable", True)),
                               stable_for=None if stable_for is None else float(stable_for))
    except (TypeError, ValueError) as exc:
        raise FerError(f"face entry {dict(face)!r} has a value of the wrong type ({exc}); id is an integer, "
                       "confidence and stable_for are numbers") from None


def as_observation(data: Any) -> Observation:
    """Accept an Observation, a frame dict ({"stamp", "faces"}) or an object with ``to_json()``."""
    if isinstance(data, Observation):
        return data
    if hasattr(data, "to_json") and not isinstance(data, Mapping):
        data = data.to_json()  # a FrameResult
    if not isinstance(data, Mapping):
        raise FerError(f"an observation must be a frame object with 'stamp' and 'faces', got {type(data).__name__}")
    if "stamp" not in data and "header" not in data:
        raise FerError("observation has no 'stamp'; each frame needs its time in seconds")
    faces = data.get("faces") or []
    if not isinstance(faces, list):
        raise FerError(f"observation 'faces' must be a list, got {type(faces).__name__}")
    return Observation(stamp=_stamp(data["stamp"] if "stamp" in data else data["header"]),
                       faces=[face_from_dict(f) for f in faces])


def choose_face(faces: list[FaceObservation], follow: str, track_id: int | None = None) -> FaceObservation | None:
    """The face to follow; ties go to the lowest track id so the choice is deterministic."""
    if not faces:
        return None
    if follow == "track_id":
        return next((f for f in faces if f.track_id == track_id), None)
    if follow == "most_confident":
        return max(faces, key=lambda f: (f.confidence, -f.track_id))
    return max(faces, key=lambda f: (f.area, -f.track_id))


class MusicPolicy:
    """Turns a stream of observations into player decisions (``None``: leave the player alone)."""

    def __init__(self, config: MusicConfig | None = None) -> None:
        self.config = config if config is not None else MusicConfig()
        self.reset()

    def reset(self) -> None:
        """Forget everything: nothing playing, no history, round-robin from the start."""
        self.state = "idle"  # idle | playing | paused | stopped
        self.playlist = ""  # what is playing (or paused)
        self.item = ""
        self._emotion = ""  # emotion that chose the current playlist
        self._acted: str | None = None  # last followed emotion the policy answered
        self._last_change: float | None = None  # stamp of the last playlist change
        self._seen: float | None = None  # stamp the followed face was last seen (or the first stamp)
        self._last_stamp: float | None = None
        self._absent_handled = False  # the no-face rule already ran for this absence
        self._held: tuple[int, str, float] | None = None  # own stability clock when stable_for is missing
        self._deferred: str | None = None  # emotion held back by the cooldown
        self._next: dict[str, int] = {}  # round-robin position per playlist

    def step(self, observation: Any) -> Decision | None:
        """Feed one observation (see ``as_observation``); returns what to do, if anything."""
        obs = as_observation(observation)
        self._check_time(obs.stamp)
        face = choose_face(obs.faces, self.config.follow, self.config.track_id)
        if face is None:
            return self._absent(obs.stamp)
        self._seen = obs.stamp
        if self._absent_handled:
            self._absent_handled = False
            if self.state in ("paused", "stopped"):
                self.state = "playing"
                return self._decision(obs.stamp, "play", self._emotion, face.track_id,
                                      f"face back; resuming playlist {self.playlist}")
        return self._follow(obs.stamp, face)

    def tick(self, stamp: float) -> Decision | None:
        """Apply the no-face rule at ``stamp`` when observations stopped arriving (a timer calls this)."""
        if self._last_stamp is None or stamp < self._last_stamp:
            return None
        return self._absent(stamp)

    def _check_time(self, stamp: float) -> None:
        if self._last_stamp is not None and stamp < self._last_stamp - BACKWARD_TOLERANCE_S:
            log.warning("stamps jumped back from %.3f to %.3f s; restarting the policy clocks", self._last_stamp, stamp)
            self._last_change, self._seen, self._held, self._deferred = None, None, None, None
        if self._seen is None:
            self._seen = stamp  # absence is counted from the first observation
        self._last_stamp = stamp

    def _absent(self, stamp: float) -> Decision | None:
        after = self.config.no_face.after_s
        if self._absent_handled or self._seen is None or stamp - self._seen < after:
            return None
        self._absent_handled = True
        if self.state != "playing":
            return None
        action = self.config.no_face.action
        if action != "keep":
            self.state = "paused" if action == "pause" else "stopped"
        return self._decision(stamp, action, "", -1,
                              f"no face for {stamp - self._seen:.1f} s (no_face.after_s {after:g}, action {action})")

    def _held_for(self, stamp: float, face: FaceObservation, label: str) -> float:
        if self._held is None or self._held[:2] != (face.track_id, label):
            self._held = (face.track_id, label, stamp)
        return face.stable_for if face.stable_for is not None else stamp - self._held[2]

    def _follow(self, stamp: float, face: FaceObservation) -> Decision | None:
        label = canonical_emotion(face.label)
        held = self._held_for(stamp, face, label)
        if label == self._acted:
            self._deferred = None  # the mood went back to what is playing: nothing is pending
            return None
        if label == UNCERTAIN or not face.stable or held < self.config.min_stable_s:
            return None
        target = self.config.playlist_for(label)
        if target is None:
            self._acted = label
            return self._decision(stamp, "keep", label, face.track_id,
                                  f"no playlist for {label} (strategy {self.config.strategy}); music unchanged")
        if target == self.playlist and self.state == "playing":
            self._acted = label
            return self._decision(stamp, "keep", label, face.track_id, f"{label} maps to {target}, already playing")
        if self._last_change is not None and stamp - self._last_change < self.config.cooldown_s:
            self._deferred = label
            return None
        waited = " after the cooldown" if self._deferred == label else ""
        self._deferred = None
        self.playlist, self.item, self._emotion = target, self._next_item(target), label
        self.state, self._last_change, self._acted = "playing", stamp, label
        return self._decision(stamp, "play", label, face.track_id,
                              f"{label} stable for {held:.1f} s -> playlist {target} ({self.config.strategy}){waited}")

    def _next_item(self, playlist: str) -> str:
        items = self.config.playlists[playlist]
        index = self._next.get(playlist, 0)
        self._next[playlist] = index + 1
        return items[index % len(items)]

    def _decision(self, stamp: float, action: str, emotion: str, track_id: int, reason: str) -> Decision:
        return Decision(stamp=stamp, action=action, emotion=emotion, playlist=self.playlist, item=self.item,
                        track_id=track_id, strategy=self.config.strategy, reason=reason)
