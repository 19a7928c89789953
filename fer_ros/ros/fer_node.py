"""fer_node: camera images in, fer_ros/EmotionArray out (the thin rclpy layer).

The node only reads parameters, converts messages (fer_ros.messages.convert), calls the core
pipeline and publishes. Latency stays bounded when inference is slower than the camera: the
image callback just keeps the newest message (counting the one it replaces as dropped), and a
processing thread always takes the newest frame, so no queue can build up.

Topics (relative names follow the node's namespace):
  sub  <image_topic> (sensor_msgs/Image) or <image_topic>/compressed (sensor_msgs/CompressedImage),
       reliable or best effort to match the camera (fer_ros.messages.qos), keep-last 1
  pub  emotions (fer_ros/EmotionArray), every processed frame, empty faces when nobody is there
  pub  ~/annotated (sensor_msgs/Image), drawn only while somebody subscribes
  pub  /diagnostics (diagnostic_msgs/DiagnosticArray), every diagnostics_period seconds
  pub  /humans/faces/... (ROS4HRI, hri_msgs) with ros4hri=true: see fer_ros.ros.hri_publisher
With ros4hri_input=true the faces come from another ROS4HRI detector instead of the camera:
  sub  /humans/faces/tracked, /humans/faces/<id>/aligned; pub /humans/faces/<id>/expression
  (fer_ros.ros.hri_consumer), beside /diagnostics; no camera subscription, emotions or ~/annotated
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from fer_ros.device import set_torch_threads
from fer_ros.diagnostics import ERROR, OK, WARN, FrameStats, Thresholds
from fer_ros.errors import FerError
from fer_ros.messages.convert import MessageTypes, msg_to_rgb
from fer_ros.messages.qos import BEST_EFFORT, RELIABLE, choose_reliability
from fer_ros.messages.step import process_image_msg
from fer_ros.parameters.node import NODE_NAME, apply_params, param_specs, settings_from_params
from fer_ros.perception.alignment import FaceAligner
from fer_ros.perception.latest import LatestFrame
from fer_ros.pipeline import FramePipeline
from fer_ros.ros.node_main import declare
from fer_ros.ros.node_main import main as node_main

# Depth 1 because only the newest frame matters (the stock SensorDataQoS keeps 5); the
# reliability follows the camera's publishers (fer_ros.messages.qos).
RELIABILITY = {RELIABLE: ReliabilityPolicy.RELIABLE, BEST_EFFORT: ReliabilityPolicy.BEST_EFFORT}
QOS_CHECK_PERIOD = 1.0  # seconds between two looks at the camera's publishers (camera_qos=auto)
DISCOVERY_WAIT = 2.0  # seconds camera_qos=auto waits for the camera's publishers before its first subscription
LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}
BAD_FRAME_LOG_PERIOD = 5.0  # seconds between two log lines about skipped frames


class FerNode(Node):
    """Facial expression recognition on a camera topic."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._specs = {s.name: s for s in param_specs()}
        values = declare(self, list(self._specs.values()))
        self._config, self._settings = settings_from_params(values)  # FerError on invalid values

        self._types = MessageTypes.from_rclpy()
        hri_types, consume = None, self._settings.ros4hri_input
        if self._settings.ros4hri or consume:  # hri_msgs is optional: imported only when asked for, checked before the model loads
            from fer_ros.messages.hri_map import ALIGNED_SIZE
            from fer_ros.ros import hri_consumer, hri_publisher
            hri_types = hri_publisher.load_hri_types("ros4hri_input" if consume else "ros4hri")
        self.get_logger().info("loading the model and running a warm-up inference")
        set_torch_threads(self._config.classifier.threads)  # process-wide: the entry point's job, not the pipeline's
        start = time.monotonic()
        self._pipeline = FramePipeline(self._config)
        loaded = time.monotonic()
        self._pipeline.warmup(detection=not consume)
        self.get_logger().info(f"model ready on {self._pipeline.device} (load {loaded - start:.1f} s, warm-up "
                               f"{time.monotonic() - loaded:.1f} s): {self._pipeline.weights_info}")
        self._hri = None
        if self._settings.ros4hri:
            aligner = FaceAligner(self._config.align, ALIGNED_SIZE, template=self._pipeline.classifier.align_template)
            self._hri = hri_publisher.HriPublisher(self, aligner, self._types, hri_types)

        self._lock = threading.Lock()  # pipeline, settings (and the consumed faces' topics): processing thread vs callbacks
        self._stop = threading.Event()
        self._stats = FrameStats()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._consumer = None
        if consume:  # the faces come from another detector: no camera, no emotions or ~/annotated
            self._consumer = hri_consumer.HriConsumer(self, self._pipeline, self._lock, self._stats, hri_types)
            self._frames, process, self._topic = self._consumer.inbox, self._consumer.process, hri_consumer.ALIGNED_TOPIC
        else:
            self._frames, process = LatestFrame(), self._process  # newest (message, arrival time) wins
            self._subscribe_camera()
        self._timer = self.create_timer(self._settings.diagnostics_period, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._worker = threading.Thread(target=self._run, args=(process,), name="fer_processing", daemon=True)
        self._worker.start()

    # --- camera subscription ---------------------------------------------------------------------

    def _subscribe_camera(self) -> None:
        # rclpy's standard qos_overrides.<topic>.publisher.{depth,history,reliability} parameters
        overridable = QoSOverridingOptions.with_default_policies()
        self._emotions_pub = self.create_publisher(self._types.EmotionArray, "emotions", 10,
                                                   qos_overriding_options=overridable)
        self._annotated_pub = self.create_publisher(Image, "~/annotated", 1, qos_overriding_options=overridable)
        topic = self._settings.image_topic
        if self._settings.compressed:
            topic, msg_type = topic.rstrip("/") + "/compressed", CompressedImage
        else:
            msg_type = Image
        self._topic, self._msg_type = topic, msg_type
        self._subscription, self._reliability = None, None
        if self._settings.camera_qos == "auto":
            self._wait_for_camera(DISCOVERY_WAIT)
        self._match_camera_qos()
        if self._settings.camera_qos == "auto":
            self._qos_timer = self.create_timer(QOS_CHECK_PERIOD, self._match_camera_qos)
        self.get_logger().info(f"listening on {topic} ({msg_type.__name__})")

    def _wait_for_camera(self, timeout: float) -> None:
        """Give discovery a moment to show the camera, so the first subscription already matches its QoS."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.get_publishers_info_by_topic(self._topic):
            time.sleep(0.05)  # the middleware's own threads fill the graph; nothing to spin

    def _match_camera_qos(self) -> None:
        """(Re)subscribe with the reliability the camera's publishers call for; log the choice."""
        if not rclpy.ok(context=self.context):
            return  # shutting down
        offered = [RELIABLE if info.qos_profile.reliability == ReliabilityPolicy.RELIABLE else BEST_EFFORT
                   for info in self.get_publishers_info_by_topic(self._topic)]
        choice = choose_reliability(self._settings.camera_qos, offered, self._reliability)
        if choice.reliability == self._reliability:
            return
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
        qos = QoSProfile(reliability=RELIABILITY[choice.reliability], history=HistoryPolicy.KEEP_LAST, depth=1,
                         durability=DurabilityPolicy.VOLATILE)
        self._subscription = self.create_subscription(self._msg_type, self._topic, self._on_image, qos)
        self._reliability = choice.reliability
        self.get_logger().info(f"subscribed to {self._topic} {choice.reliability.replace('_', ' ')}, keep last 1: "
                               f"{choice.reason}")

    # --- threads ---------------------------------------------------------------------------------

    def _on_image(self, msg: Any) -> None:
        """Keep only the newest frame; one still waiting is dropped (counted)."""
        replaced = self._frames.put((msg, time.monotonic()))
        self._stats.received(replaced_unprocessed=replaced)

    def _run(self, process: Callable[[Any], None]) -> None:
        while not self._stop.is_set():
            item = self._frames.take(timeout=0.2)
            if item is None or self._stop.is_set():
                continue
            try:
                process(item)
            except Exception as exc:  # the thread must outlive any single frame
                if not rclpy.ok(context=self.context):
                    return  # shutting down: publishing fails, nothing to report
                self._stats.bad(f"{type(exc).__name__}: {exc}")
                self.get_logger().error(f"unexpected error on a frame, skipped: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=BAD_FRAME_LOG_PERIOD)

    def _process(self, item: tuple[Any, float]) -> None:
        msg, arrived = item
        try:
            with self._lock:
                draw = self._settings.publish_annotated and self._annotated_pub.get_subscription_count() > 0
                rgb = msg_to_rgb(msg) if self._hri is not None else None  # the ROS4HRI aligned faces need the pixels
                out = process_image_msg(self._pipeline, msg, self._types, annotate=draw, rgb=rgb)
        except FerError as exc:
            self._stats.bad(str(exc))
            self.get_logger().warning(f"skipping a frame: {exc}", throttle_duration_sec=BAD_FRAME_LOG_PERIOD)
            return
        self._emotions_pub.publish(out.emotions)
        if out.annotated is not None:
            self._annotated_pub.publish(out.annotated)
        if self._hri is not None:
            self._hri.publish(out.result, msg.header, rgb)
        self._stats.processed((time.monotonic() - arrived) * 1000.0, len(out.result.faces))

    # --- parameters and diagnostics --------------------------------------------------------------

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        """Validate live changes with fer_ros.config and apply them all or none."""
        changes = {p.name: p.value for p in parameters if p.name in self._specs}
        fixed = [name for name in changes if not self._specs[name].live]
        if fixed:
            return SetParametersResult(successful=False,
                                       reason=f"{', '.join(fixed)} can only be set at start-up (config file or launch argument)")
        mistyped = [name for name, value in changes.items() if not self._specs[name].accepts(value)]
        if mistyped:
            return SetParametersResult(successful=False,
                                       reason=", ".join(f"{n} expects a {self._specs[n].kind}" for n in mistyped))
        try:
            with self._lock:
                apply_params(self._config, self._settings, changes)
        except FerError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if changes:
            self.get_logger().info("parameters changed: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        if not rclpy.ok(context=self.context):
            return  # shutting down
        s = self._settings
        device = str(self._pipeline.device)
        report = self._stats.report(Thresholds(s.warn_latency_ms, s.error_latency_ms, s.warn_fps),
                                    device=device, image_topic=self._topic, weights=str(self._pipeline.weights_info))
        status = DiagnosticStatus(level=LEVELS[report.level], name=f"{self.get_name()}: facial expression recognition",
                                  message=report.message, hardware_id=device,
                                  values=[KeyValue(key=k, value=v) for k, v in report.values])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(msg)

    def destroy_node(self) -> None:
        self._stop.set()
        self._frames.close()
        worker = getattr(self, "_worker", None)
        if worker is not None and worker.is_alive():
            worker.join(timeout=10.0)
        pipeline = getattr(self, "_pipeline", None)
        if pipeline is not None and (worker is None or not worker.is_alive()):
            pipeline.close()  # stops the background detection thread; not under a frame still in progress
        for outputs in (getattr(self, "_hri", None), getattr(self, "_consumer", None)):
            if outputs is not None:
                outputs.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of `ros2 run fer_ros fer_node`; returns 1 when the configuration is invalid."""
    return node_main(FerNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
