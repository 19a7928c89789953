"""A rosbags typestore that knows the fer_ros messages, built from our own msg/*.msg files.

Bag tools (record, replay, evaluate) and the tests use it to get real message classes and CDR
serialisation without a ROS installation. The .msg files are looked up where each install
layout puts them: ``fer_ros/_msg`` (pip install, colcon install), ``<repo>/msg`` (source tree,
editable install) and ``share/fer_ros/msg`` (the ament index of a sourced ROS workspace).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys import get_typestore as _rosbags_typestore

from fer_ros.errors import FerError
from fer_ros.messages.convert import MessageTypes

PACKAGE = "fer_ros"
MESSAGES = ("Emotion", "EmotionArray", "NowPlaying")
EMOTION_ARRAY = f"{PACKAGE}/msg/EmotionArray"
NOW_PLAYING = f"{PACKAGE}/msg/NowPlaying"
DEFAULT_DISTRO = "humble"  # base store for the standard messages; their definitions match across ROS 2 LTS releases


def msg_dirs() -> list[Path]:
    """Candidate directories holding our .msg files, most specific first."""
    here = Path(__file__).resolve().parent  # fer_ros/messages
    dirs = [here.parent / "_msg", here.parent.parent / "msg"]
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            dirs.append(Path(get_package_share_directory(PACKAGE)) / "msg")
        except (PackageNotFoundError, OSError):  # OSError: ament_index_python there, AMENT_PREFIX_PATH unset
            pass
    except ImportError:
        pass  # no ROS on this machine
    return dirs


def find_msg_dir() -> Path:
    for d in msg_dirs():
        if all((d / f"{name}.msg").is_file() for name in MESSAGES):
            return d
    searched = ", ".join(str(d) for d in msg_dirs())
    raise FerError(f"fer_ros message definitions ({', '.join(m + '.msg' for m in MESSAGES)}) not found in {searched}; "
                   "reinstall fer_ros (pip install . copies them into fer_ros/_msg)")


def message_definitions(msg_dir: Path | None = None) -> dict[str, Any]:
    """Parsed definitions of our messages, ready for ``Typestore.register``."""
    msg_dir = msg_dir or find_msg_dir()
    types: dict[str, Any] = {}
    for name in MESSAGES:
        types.update(get_types_from_msg((msg_dir / f"{name}.msg").read_text(), f"{PACKAGE}/msg/{name}"))
    return types


def register_messages(store: Any, msg_dir: Path | None = None) -> Any:
    """Add the fer_ros messages to an existing rosbags typestore; returns the store."""
    store.register(message_definitions(msg_dir))
    return store


def get_typestore(distro: str = DEFAULT_DISTRO) -> Any:
    """A fresh typestore for ``distro`` (humble, jazzy, ... or latest) with the fer_ros messages."""
    key = distro.strip().lower()
    name = "LATEST" if key == "latest" else f"ROS2_{key.upper()}"
    if not hasattr(Stores, name):
        known = ", ".join(s.name[5:].lower() for s in Stores if s.name.startswith("ROS2_"))
        raise FerError(f"unknown ROS 2 distribution '{distro}' for the bag typestore; known: {known}, latest")
    return register_messages(_rosbags_typestore(getattr(Stores, name)))


def message_types(store: Any) -> MessageTypes:
    """Message classes of ``store`` for ``fer_ros.messages.convert``."""
    return MessageTypes.from_typestore(store)
