"""fer_ros: facial expression recognition for robots — a ROS-free core plus thin ROS 2 nodes."""

__version__ = "0.1.0"
