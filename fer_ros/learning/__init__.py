"""Training and measuring: datasets, training, evaluation, video stability and the speed benchmark."""
