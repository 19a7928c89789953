"""The emotion model: AMS-CNN, its checkpoint format and preprocessing, calibration, and the runtimes that run it."""
