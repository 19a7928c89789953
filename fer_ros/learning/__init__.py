"""Learning: datasets, training (and the pretrained teacher), evaluation, robustness and onset sequences."""
