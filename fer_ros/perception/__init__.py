"""The per-frame stages: detect (MTCNN cascade), track and refresh, align, smooth over time, annotate."""
