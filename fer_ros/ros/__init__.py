"""The ROS 2 side of fer_ros.

``convert``, ``typestore``, ``params`` and ``stats`` import no ROS: they are tested without ROS
(message classes come from the rosbags typestore there). Only the nodes (``fer_node``,
``music_node``, their shared ``node_main``) use rclpy, and nothing in the core imports them.
"""
