"""The settings dataclasses seen as ROS parameters and parameter files, without rclpy.

``spec`` describes one parameter from a settings field, ``node`` lists fer_node's parameters
and renders ``config/fer.yaml``, and ``files`` is the one reader of YAML settings files (the
CLI's ``--config``, the launch file, the node and the music example).
"""
