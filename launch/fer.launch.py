"""Start fer_node (facial expression recognition) and, on request, the music controller.

    ros2 launch fer_ros fer.launch.py image_topic:=/camera/image_raw
    ros2 launch fer_ros fer.launch.py compressed:=true device:=cpu publish_annotated:=false
    ros2 launch fer_ros fer.launch.py namespace:=robot1 music:=true
    ros2 launch fer_ros fer.launch.py large_frames:=true     # Fast DDS profile for large frames (docs/ros.md)
    ros2 launch fer_ros fer.launch.py ros4hri:=true          # also the ROS4HRI /humans/faces/ topics
    ros2 launch fer_ros fer.launch.py ros4hri_input:=true    # expressions of another ROS4HRI detector's faces

config_file holds every parameter (default: the installed config/fer.yaml). The other
arguments override it only when given, so an edited copy of fer.yaml keeps its values.
The file is read here and checked, so a mistake stops the launch with a message naming the
setting; the standard ROS parameters rclpy gives every node (qos_overrides.*, use_sim_time)
pass through unchecked. The values reach the node as `-p name:=value` arguments, which apply
in any namespace and leave no file behind. When fer_node or the music controller exits with
an error (an invalid setting, device:=cuda without a GPU), the launch shuts down and
`ros2 launch` exits non-zero.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from fer_ros.errors import FerError
from fer_ros.parameters.files import load_params_file
from fer_ros.parameters.node import param_arguments, param_specs, settings_from_params
from launch import LaunchDescription

# launch argument -> the parameter it overrides when not empty
OVERRIDES = {
    "image_topic": "image_topic",
    "compressed": "compressed",
    "publish_annotated": "publish_annotated",
    "weights": "classifier.weights",
    "device": "detector.device",
    "camera_qos": "camera_qos",
    "ros4hri": "ros4hri",
    "ros4hri_input": "ros4hri_input",
}
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _argument_value(argument: str, text: str, kind: str):
    if kind != "bool":
        return text
    if text.lower() in TRUE + FALSE:
        return text.lower() in TRUE
    raise FerError(f"launch argument {argument}:={text} must be true or false")


def _fer_node(context):
    specs = {s.name: s for s in param_specs()}
    values = load_params_file(LaunchConfiguration("config_file").perform(context))
    for argument, name in OVERRIDES.items():
        text = LaunchConfiguration(argument).perform(context).strip()
        if text:
            values[name] = _argument_value(argument, text, specs[name].kind)
    values = {name: specs[name].to_ros(value) if name in specs else value for name, value in values.items()}
    settings_from_params(values)  # fail here, with the setting's name, rather than in the node
    node = Node(package="fer_ros", executable="fer_node", name="fer_node", namespace=LaunchConfiguration("namespace"),
                ros_arguments=param_arguments(values), output="screen", additional_env=_dds_env(context))
    return [node, shutdown_on_failure(node)]


def _dds_env(context) -> dict:
    """large_frames:=true gives our nodes the Fast DDS profile for large samples (config/)."""
    text = LaunchConfiguration("large_frames").perform(context).strip().lower()
    if not _argument_value("large_frames", text, "bool"):
        return {}
    return {"FASTDDS_DEFAULT_PROFILES_FILE": LaunchConfiguration("fastdds_profile").perform(context)}


def _fail(event, context):
    """A node that exits with an error ends the launch, and ros2 launch exits non-zero."""
    if event.returncode not in (0, None) and not context.is_shutdown:
        raise FerError(f"{event.action.name} exited with code {event.returncode} (its log above says why); "
                       "shutting down")


def shutdown_on_failure(node) -> RegisterEventHandler:
    return RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_fail))


def _music_node(context):
    music = Node(package="fer_ros", executable="music_controller", name="music_controller",
                 namespace=LaunchConfiguration("namespace"), output="screen",
                 parameters=[{"config_file": ParameterValue(LaunchConfiguration("music_config"), value_type=str)}],
                 additional_env=_dds_env(context))
    return [music, shutdown_on_failure(music)]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("fer_ros")
    arguments = [
        DeclareLaunchArgument("config_file", default_value=PathJoinSubstitution([share, "config", "fer.yaml"]),
                              description="parameter file of fer_node (every setting, commented)"),
        DeclareLaunchArgument("image_topic", default_value="",
                              description="camera topic (sensor_msgs/Image); empty = config_file's (/camera/image_raw)"),
        DeclareLaunchArgument("compressed", default_value="",
                              description="true: subscribe to <image_topic>/compressed; empty = config_file's (false)"),
        DeclareLaunchArgument("weights", default_value="",
                              description="checkpoint file(s), comma-separated; empty = config_file's (bundled model)"),
        DeclareLaunchArgument("device", default_value="",
                              description="auto, cpu, cuda or cuda:N; empty = config_file's (auto)"),
        DeclareLaunchArgument("publish_annotated", default_value="",
                              description="true/false: publish ~/annotated; empty = config_file's (true)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the nodes; emotions and ~/annotated follow it"),
        DeclareLaunchArgument("music", default_value="false",
                              description="true: also start the music controller (music_controller)"),
        DeclareLaunchArgument("music_config", default_value=PathJoinSubstitution([share, "config", "music.yaml"]),
                              description="music mapping file of the music controller"),
        DeclareLaunchArgument("camera_qos", default_value="",
                              description="auto, reliable or best_effort; empty = config_file's (auto: match the camera)"),
        DeclareLaunchArgument("ros4hri", default_value="",
                              description="true/false: also publish the ROS4HRI /humans/faces/ topics (needs "
                                          "hri_msgs); empty = config_file's (false)"),
        DeclareLaunchArgument("ros4hri_input", default_value="",
                              description="true/false: classify the faces another ROS4HRI detector publishes on "
                                          "/humans/faces/<id>/aligned instead of the camera's, and publish their "
                                          "/humans/faces/<id>/expression (needs hri_msgs); empty = config_file's (false)"),
        DeclareLaunchArgument("large_frames", default_value="false",
                              description="true: apply the Fast DDS profile for large samples to our nodes "
                                          "(a best-effort camera sending raw frames of ~500 KB and more; the "
                                          "camera's process needs it too)"),
        DeclareLaunchArgument("fastdds_profile",
                              default_value=PathJoinSubstitution([share, "config", "fastdds_large_frames.xml"]),
                              description="the Fast DDS XML profile large_frames:=true applies"),
    ]
    music = OpaqueFunction(function=_music_node, condition=IfCondition(LaunchConfiguration("music")))
    return LaunchDescription(arguments + [OpaqueFunction(function=_fer_node), music])
