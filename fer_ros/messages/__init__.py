"""The one message-conversion layer, without rclpy.

Images and results become ROS messages and back here, for the node (rclpy classes) and the bag
tools and tests (a rosbags typestore) alike: ``convert`` and ``images`` build messages from the
classes they are handed, ``typestore`` supplies them without ROS, ``step`` runs one image
message through the pipeline, ``hri_map`` lays results out as ROS4HRI messages, and ``qos``
chooses how camera messages are subscribed to.
"""
