"""ROS 2 node `music_controller`: /emotions -> music policy -> player backend -> /music/now_playing.

Thin on purpose: it reads parameters, converts messages, calls the ROS-free
``fer_ros.music`` policy and backend, and publishes what was decided.
"""
from __future__ import annotations

import dataclasses
import math
import sys

import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from fer_ros.errors import FerError
from fer_ros.msg import EmotionArray, NowPlaying
from fer_ros.music.backends import make_backend
from fer_ros.music.mapping import BACKENDS, FOLLOW_MODES, STRATEGIES, load_config
from fer_ros.music.policy import Decision, MusicPolicy

TIMER_PERIOD_S = 0.5  # how often the no-face rule is checked when /emotions goes quiet


def _described(text: str, choices: tuple[str, ...] = ()) -> ParameterDescriptor:
    allowed = f"one of: '' (use the config file), {', '.join(choices)}" if choices else ""
    return ParameterDescriptor(description=text, additional_constraints=allowed, read_only=True)


def _to_time(stamp: float) -> Time:
    sec = math.floor(stamp)
    nanosec = min(int(round((stamp - sec) * 1e9)), 999_999_999)
    return Time(sec=int(sec), nanosec=nanosec)


class MusicController(Node):
    """Follows one face's stable emotion and drives a music player."""

    def __init__(self) -> None:
        super().__init__("music_controller")
        from fer_ros.ros.convert import result_from_msg  # the shared message converter

        self._convert = result_from_msg
        config_file = self.declare_parameter(
            "config_file", "", _described("music mapping YAML (see config/music.yaml); '' = built-in defaults")).value
        backend = self.declare_parameter("backend", "", _described("player backend", BACKENDS)).value
        dry_run = self.declare_parameter(
            "dry_run", False, ParameterDescriptor(description="never start a player (log backend)", read_only=True)).value
        follow = self.declare_parameter("follow", "", _described("which face drives the music", FOLLOW_MODES)).value
        strategy = self.declare_parameter("strategy", "", _described("match or uplift the mood", STRATEGIES)).value
        track_id = self.declare_parameter("track_id", -1, ParameterDescriptor(
            description="face to follow when follow is track_id; -1 = the config file's", read_only=True)).value

        config = load_config(config_file or None)
        overrides = {k: v for k, v in (("follow", follow), ("strategy", strategy)) if v}
        if track_id >= 0:
            overrides.update(track_id=track_id, follow=follow or "track_id")
        config = dataclasses.replace(config, **overrides) if overrides else config
        self._policy = MusicPolicy(config)
        self._backend = make_backend("log" if dry_run else (backend or config.backend), config,
                                     emit=self.get_logger().info)
        self._frame_id = ""
        self._last_rx: tuple[float, float] | None = None  # (message stamp, node clock) of the newest message

        # Latched: a late subscriber (rqt, a dashboard) still learns what is playing.
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub = self.create_publisher(NowPlaying, "music/now_playing", latched)
        self._sub = self.create_subscription(EmotionArray, "emotions", self._on_emotions, 10)
        self._timer = self.create_timer(TIMER_PERIOD_S, self._on_timer)
        self.get_logger().info(f"music_controller: backend {self._backend.name}, strategy {config.strategy}, "
                               f"follow {config.follow}, {len(config.playlists)} playlists")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_emotions(self, msg: EmotionArray) -> None:
        try:
            decision = self._policy.step(self._convert(msg))
            self._frame_id = msg.header.frame_id
            self._last_rx = (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, self._now())
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
        msg = NowPlaying(action=decision.action, emotion=decision.emotion, playlist=decision.playlist,
                         item=decision.item, track_id=decision.track_id, strategy=decision.strategy,
                         backend=self._backend.name)
        msg.header.stamp = _to_time(decision.stamp)
        msg.header.frame_id = self._frame_id
        self._pub.publish(msg)  # publish first: the decision stands even if the player fails
        self._backend.apply(decision)

    def destroy_node(self) -> None:
        self._backend.close()  # never leave a player process behind
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = MusicController()
        rclpy.spin(node)
    except FerError as exc:
        print(f"music_controller: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
