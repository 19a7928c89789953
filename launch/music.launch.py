"""Start the music_controller node: /emotions -> music policy -> player, publishing /music/now_playing.

    ros2 launch fer_ros music.launch.py                          # log backend: prints what it would play
    ros2 launch fer_ros music.launch.py backend:=command         # runs the argv in the config (mpv by default)
    ros2 launch fer_ros music.launch.py config_file:=/path/my_music.yaml strategy:=uplift

Run it next to the recogniser (fer.launch.py), which publishes /emotions. If the controller
exits with an error (a bad config file), the launch shuts down and exits non-zero.
"""
from launch.actions import DeclareLaunchArgument, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def _string(name: str) -> ParameterValue:
    # value_type=str keeps '' as an empty string instead of YAML-parsing it to null.
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def _fail(event, context):
    if event.returncode not in (0, None) and not context.is_shutdown:
        raise RuntimeError(f"{event.action.name} exited with code {event.returncode} (its log above says why)")


def generate_launch_description() -> LaunchDescription:
    default_config = PathJoinSubstitution([FindPackageShare("fer_ros"), "config", "music.yaml"])
    arguments = [
        DeclareLaunchArgument("config_file", default_value=default_config,
                              description="music mapping YAML: playlists, strategy, timings, backend settings"),
        DeclareLaunchArgument("backend", default_value="",
                              description="log, mpris or command; empty = the config file's 'backend'"),
        DeclareLaunchArgument("dry_run", default_value="false", choices=["true", "false"],
                              description="never start a player (log backend)"),
        DeclareLaunchArgument("strategy", default_value="", description="match or uplift; empty = the config file's"),
        DeclareLaunchArgument("follow", default_value="",
                              description="largest, most_confident or track_id; empty = the config file's"),
        DeclareLaunchArgument("emotions_topic", default_value="emotions",
                              description="EmotionArray topic to follow"),
    ]
    node = Node(
        package="fer_ros",
        executable="music_controller",
        name="music_controller",
        output="screen",
        parameters=[{
            "config_file": _string("config_file"),
            "backend": _string("backend"),
            "dry_run": ParameterValue(LaunchConfiguration("dry_run"), value_type=bool),
            "strategy": _string("strategy"),
            "follow": _string("follow"),
        }],
        remappings=[("emotions", LaunchConfiguration("emotions_topic"))],
    )
    return LaunchDescription(arguments + [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_fail))])
