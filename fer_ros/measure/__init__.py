"""Measurement of the running pipeline: speed, memory, overload, label stability, the ROS graph.

``frames`` makes the benchmark's camera-like frames, ``speed`` times the pipeline against a
naive baseline, ``load`` runs the soak and overload checks, ``stability`` scores published labels
per video shot and ``ros_graph`` times the node in a real ROS graph. ``fer-ros bench``,
``fer-ros stability`` and ``scripts/ros_graph_bench.py`` drive them.
"""
