"""ROS 2 node `music_controller`: /emotions -> music policy -> player backend -> /music/now_playing.

Thin on purpose: it reads parameters, converts messages, calls the ROS-free
``fer_ros.music`` policy and backend, and publishes what was decided.
"""
from __future__ import annotations

import dataclasses
import sys

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from fer_ros.errors import FerError
from fer_ros.messages.convert import MessageTypes, decision_to_msg, result_from_msg, stamp_to_seconds
from fer_ros.music.backends import make_backend
from fer_ros.music.mapping import load_config
from fer_ros.music.parameters import music_param_specs, music_settings_from_params
from fer_ros.music.policy import Decision, MusicPolicy
from fer_ros.ros.node_main import declare
from fer_ros.ros.node_main import main as node_main

NODE_NAME = "music_controller"
TIMER_PERIOD_S = 0.5  # how often the no-face rule is checked when /emotions goes quiet


class MusicController(Node):
    """Follows one face's stable emotion and drives a music player."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        s = music_settings_from_params(declare(self, music_param_specs()))  # FerError on invalid values
        self._types = MessageTypes.from_rclpy()

        config = load_config(s.config_file or None)
        overrides = {k: v for k, v in (("follow", s.follow), ("strategy", s.strategy)) if v}
        if s.track_id >= 0:
            overrides.update(track_id=s.track_id, follow=s.follow or "track_id")
        config = dataclasses.replace(config, **overrides) if overrides else config
        self._policy = MusicPolicy(config)
        self._backend = make_backend("log" if s.dry_run else (s.backend or config.backend), config,
                                     emit=self.get_logger().info)
        self._frame_id = ""
        self._last_rx: tuple[float, float] | None = None  # (message stamp, node clock) of the newest message

        # Latched: a late subscriber (rqt, a dashboard) still learns what is playing.
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub = self.create_publisher(self._types.NowPlaying, "music/now_playing", latched)
        self._sub = self.create_subscription(self._types.EmotionArray, "emotions", self._on_emotions, 10)
        self._timer = self.create_timer(TIMER_PERIOD_S, self._on_timer)
        self.get_logger().info(f"music_controller: backend {self._backend.name}, strategy {config.strategy}, "
                               f"follow {config.follow}, {len(config.playlists)} playlists")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_emotions(self, msg: object) -> None:
        try:
            decision = self._policy.step(result_from_msg(msg))
            self._frame_id = msg.header.frame_id
            self._last_rx = (stamp_to_seconds(msg.header.stamp), self._now())
            self._act(decision)
        except FerError as exc:  # one bad message or a player hiccup never stops the node
            self.get_logger().warning(str(exc))

    def _on_timer(self) -> None:
        if self._last_rx is None:
            return
        # Message stamps may come from a bag or another machine: advance the last one by node-clock time.
        stamp, received = self._last_rx
        try:
            self._act(self._policy.tick(stamp + max(0.0, self._now() - received)))
        except FerError as exc:
            self.get_logger().warning(str(exc))

    def _act(self, decision: Decision | None) -> None:
        if decision is None:
            return
        self._pub.publish(decision_to_msg(decision, self._backend.name, self._frame_id, self._types))  # publish first: the decision stands even if the player fails
        self._backend.apply(decision)

    def destroy_node(self) -> None:
        self._backend.close()  # never leave a player process behind
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of `ros2 run fer_ros music_controller`; returns 1 when the configuration is invalid."""
    return node_main(MusicController, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
