"""Rosbag tooling: read and write bags offline, replay them through the node's own per-frame step, report."""
