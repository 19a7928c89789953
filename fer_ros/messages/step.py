"""One frame, message in, messages out: the step fer_node and the bag replayer share (no ROS import).

image message -> RGB -> FramePipeline.process at the header's stamp -> EmotionArray with the
image's header (+ the annotated image), so what `fer-ros replay` writes is what the node would
have published for the same message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fer_ros.messages.convert import MessageTypes, frame_result_to_msg, msg_to_rgb, rgb_to_image_msg, stamp_to_seconds
from fer_ros.types import FrameResult, RGBImage


@dataclass
class FrameMessages:
    """What one processed image produces."""

    result: FrameResult
    emotions: Any  # fer_ros/EmotionArray, header = the image's
    annotated: Any | None  # sensor_msgs/Image rgb8, when asked for


def process_image_msg(pipeline: Any, msg: Any, types: MessageTypes, *, annotate: bool = False,
                      rgb: RGBImage | None = None, stamp: float | None = None) -> FrameMessages:
    """Run ``pipeline`` on an Image or CompressedImage message.

    ``rgb`` skips decoding when the caller already has the pixels; ``stamp`` (seconds) replaces
    the header stamp as the pipeline's clock (a bag whose headers carry no time). Raises FerError
    for an image it cannot use.
    """
    rgb = msg_to_rgb(msg) if rgb is None else rgb
    result = pipeline.process(rgb, stamp_to_seconds(msg.header.stamp) if stamp is None else stamp)
    annotated = rgb_to_image_msg(pipeline.annotate(rgb, result), msg.header, types) if annotate else None
    return FrameMessages(result, frame_result_to_msg(result, msg.header, types), annotated)
