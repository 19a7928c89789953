"""The one exception type the fer_ros library raises for bad input or configuration.

Every message names the problem and the fix, so the CLI can print it as one line and a ROS
node can log it and carry on with the next frame.
"""


class FerError(Exception):
    """Bad input, bad configuration or a bad file: the message says what and how to fix it."""
