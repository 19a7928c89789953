"""ROS4HRI (REP-155) output of fer_node: the thin rclpy half of fer_ros.messages.hri_map.

Per processed frame: the ids of the faces in view on /humans/faces/tracked (hri_msgs/IdsList),
and per face /humans/faces/<id>/roi, /landmarks, /expression and (drawn only while somebody
subscribes) /aligned, all stamped with the camera image's header. A face whose track ends
leaves the list and its four publishers are destroyed, so its topics disappear from the graph.
Built only when the node's ``ros4hri`` parameter is true; hri_msgs is imported only then.
"""
from __future__ import annotations

from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import Image

from fer_ros.errors import FerError
from fer_ros.messages import hri_map
from fer_ros.messages.convert import MessageTypes, rgb_to_image_msg
from fer_ros.perception.alignment import FaceAligner
from fer_ros.types import Detection, FrameResult, RGBImage

QOS_DEPTH = 1  # only the newest message of a face matters


def load_hri_types(parameter: str) -> hri_map.HriTypes:
    """hri_msgs' classes, or FerError with the one-line fix for the node ``parameter`` that asked for them."""
    try:
        return hri_map.HriTypes.from_rclpy()
    except ImportError:
        raise FerError(f"{parameter}=true needs the ROS4HRI message package hri_msgs, which is not installed: "
                       "install ros-$ROS_DISTRO-hri-msgs (or build github.com/ros4hri/hri_msgs into your workspace "
                       f"and source it), or set {parameter}:=false") from None


class HriPublisher:
    """The /humans/faces/ topics of one node."""

    def __init__(self, node: Node, aligner: FaceAligner, types: MessageTypes, hri_types: hri_map.HriTypes) -> None:
        self._node, self._aligner, self._types, self._hri = node, aligner, types, hri_types
        self._faces = hri_map.TrackedFaces(hri_map.new_run_tag())
        self._tracked = node.create_publisher(hri_types.IdsList, hri_map.TRACKED_TOPIC, QOS_DEPTH)
        self._publishers: dict[str, dict[str, Any]] = {}  # face id -> topic leaf -> publisher

    def publish(self, result: FrameResult, header: Any, rgb: RGBImage) -> None:
        changes = self._faces.update([f.track_id for f in result.faces])
        for face_id in changes.ended:
            for pub in self._publishers.pop(face_id, {}).values():
                self._node.destroy_publisher(pub)
        width, height = result.image_size
        for face_id, face in zip(changes.ids, result.faces):
            pubs = self._publishers.get(face_id) or self._create(face_id)
            pubs["roi"].publish(hri_map.roi_msg(face, width, height, header, self._hri))
            pubs["landmarks"].publish(hri_map.landmarks_msg(face, width, height, header, self._hri))
            pubs["expression"].publish(hri_map.expression_msg(face, result.class_names, header, self._hri))
            if pubs["aligned"].get_subscription_count() > 0:
                crop = self._aligner.align(rgb, Detection(face.bbox, face.landmarks, face.detection_score))
                pubs["aligned"].publish(rgb_to_image_msg(crop.image, header, self._types, "bgr8"))
        self._tracked.publish(hri_map.ids_msg(changes.ids, header, self._hri))

    def _create(self, face_id: str) -> dict[str, Any]:
        kinds = {"roi": self._hri.NormalizedRegionOfInterest2D, "aligned": Image,
                 "landmarks": self._hri.FacialLandmarks, "expression": self._hri.Expression}
        pubs = {leaf: self._node.create_publisher(kind, f"{hri_map.FACES_NS}/{face_id}/{leaf}", QOS_DEPTH)
                for leaf, kind in kinds.items()}
        self._publishers[face_id] = pubs
        return pubs

    def close(self) -> None:
        """Destroy every face's publishers (the node is going away)."""
        for pubs in self._publishers.values():
            for pub in pubs.values():
                self._node.destroy_publisher(pub)
        self._publishers.clear()
