"""Music-control example: the followed face's stable emotion chooses what a player plays.

ROS-free: ``mapping`` loads the YAML mapping file, ``policy`` decides when to change the music,
``backends`` carry decisions out, ``parameters`` are the music_controller node's ROS parameters.
``fer-ros music`` and the ``music_controller`` node wire them up.
"""
from fer_ros.music.backends import Backend, CommandBackend, LogBackend, MprisBackend, make_backend
from fer_ros.music.mapping import MusicConfig, config_from_dict, load_config
from fer_ros.music.policy import Decision, FaceObservation, MusicPolicy, Observation, as_observation

__all__ = [
    "Backend", "CommandBackend", "LogBackend", "MprisBackend", "make_backend",
    "MusicConfig", "config_from_dict", "load_config",
    "Decision", "FaceObservation", "MusicPolicy", "Observation", "as_observation",
]
