"""The rclpy half of fer_ros: the nodes and nothing else.

Only code that imports rclpy lives here (``fer_node``, ``music_node``, their shared
``node_main`` and ``hri_publisher``, and ``graph_probe``, which listens to fer_node for the
ROS graph benchmark). What they convert and read comes from ROS-free modules
that bag tools and tests use too: ``fer_ros.messages`` (message conversion) and
``fer_ros.parameters`` (settings as ROS parameters). Nothing in the core imports this package.
"""
