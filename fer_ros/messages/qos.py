"""Which reliability fer_node subscribes to the camera with (no ROS import; the node applies it).

A best-effort subscription matches reliable and best-effort publishers alike, but over the
middleware's best-effort path Fast DDS loses raw frames of about 500 KB and more (a 640x480
rgb8 frame is 900 KB). A reliable subscription receives them, but does not match a best-effort
publisher at all. So, like rosbag2 and rviz, the node looks at the QoS the publishers offer and
subscribes reliable when every one of them is reliable, best effort otherwise; ``camera_qos``
forces either. History is always keep-last 1: only the newest frame matters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

RELIABLE, BEST_EFFORT, AUTO = "reliable", "best_effort", "auto"
MODES = (AUTO, RELIABLE, BEST_EFFORT)


@dataclass(frozen=True)
class QosChoice:
    """The reliability to subscribe with, and why (for the log)."""

    reliability: str  # RELIABLE or BEST_EFFORT
    reason: str


def choose_reliability(mode: str, offered: Iterable[str], current: str | None = None) -> QosChoice:
    """The subscription's reliability for ``mode`` given the publishers' offered reliabilities.

    ``offered`` holds one of RELIABLE / BEST_EFFORT per publisher on the topic; with none (yet)
    auto keeps ``current``, or starts best effort, which matches whatever publisher comes.
    """
    offered = list(offered)
    n_best_effort = sum(o != RELIABLE for o in offered)
    if mode == RELIABLE:
        note = f"; it does not match the {n_best_effort} best-effort publisher(s)" if n_best_effort else ""
        return QosChoice(RELIABLE, f"camera_qos=reliable{note}")
    if mode == BEST_EFFORT:
        return QosChoice(BEST_EFFORT, "camera_qos=best_effort (raw frames of about 500 KB and more may be lost; "
                                      "see the Fast DDS profile in config/)")
    if mode != AUTO:
        raise ValueError(f"camera_qos must be one of {', '.join(MODES)}, got {mode!r}")
    if not offered:
        kept = current or BEST_EFFORT
        return QosChoice(kept, "no publisher yet; " + ("best effort matches any camera" if current is None
                                                       else "keeping the current subscription"))
    if n_best_effort:
        return QosChoice(BEST_EFFORT, f"{n_best_effort} of {len(offered)} publisher(s) offer best effort, "
                                      "which a reliable subscription would not match")
    return QosChoice(RELIABLE, f"all {len(offered)} publisher(s) offer reliable")
