"""The benchmark and what it relies on: the newest-frame slot, the synthetic scenes, the exact
speed paths of the classifier, and short real runs of `fer-ros bench` (structure, no timings)."""
from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch
from torch import nn

from fer_ros.cli import main
from fer_ros.commands.bench import _ints, _sizes
from fer_ros.measure import frames, speed
from fer_ros.models.ams_cnn import build_model, config_for
from fer_ros.models.inference import fold_batchnorm, trace_for_cpu
from fer_ros.perception.latest import LatestFrame

# --- LatestFrame ---------------------------------------------------------------------------------


def test_latest_frame_keeps_only_the_newest_and_counts_drops():
    slot = LatestFrame()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert len(slot) == 1
    assert slot.take() == 3
    assert slot.take(timeout=0.01) is None  # nothing new: times out
    assert (slot.received, slot.taken, slot.dropped) == (3, 1, 2)


def test_latest_frame_close_wakes_a_waiting_take():
    slot = LatestFrame()
    got = []
    waiter = threading.Thread(target=lambda: got.append(slot.take()))
    waiter.start()
    slot.close()
    waiter.join(timeout=5.0)
    assert not waiter.is_alive() and got == [None] and slot.closed


def test_latest_frame_counters_add_up_under_concurrency():
    slot, taken, n = LatestFrame(), [], 20000
    done = threading.Event()

    def consume():
        while not (done.is_set() and len(slot) == 0):
            item = slot.take(timeout=0.01)
            if item is not None:
                taken.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(n):
        slot.put(i)
    done.set()
    consumer.join(timeout=30.0)
    assert slot.received == n == slot.taken + slot.dropped
    assert taken == sorted(taken) and taken[-1] == n - 1  # order kept, the last frame always arrives
    assert len(taken) == slot.taken


# --- scenes --------------------------------------------------------------------------------------


def test_scene_is_deterministic_and_moves():
    renderer = frames.SceneRenderer(320, 240)
    a, b, later = renderer.render(3, 0), renderer.render(3, 0), renderer.render(3, 10)
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, later)
    assert not np.array_equal(a, renderer.render(0, 0))


def test_jpeg_round_trip_keeps_rgb_order():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    back = frames.decode_jpeg(frames.encode_jpeg(rgb))
    assert back.shape == rgb.shape and back[..., 0].mean() > 180 and back[..., 2].mean() < 20


# --- classifier speed paths are exact ------------------------------------------------------------


def _randomised(preset: str) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(config_for(preset))
    for m in model.modules():  # BatchNorm statistics far from identity, so folding has work to do
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_folded_and_traced_models_match_the_plain_model(preset):
    model = _randomised(preset)
    cfg = model.cfg
    x = torch.randn(3, cfg.in_chans, cfg.input_size, cfg.input_size)
    with torch.inference_mode():
        expected = [t.clone() for t in model(x)]
        folded = fold_batchnorm(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        folded.to(memory_format=torch.channels_last)
        traced = trace_for_cpu(folded, cfg.in_chans, cfg.input_size)
        for batch in (1, 3):  # traced with batch 1; other batch sizes must work too
            xb = x[:batch].contiguous(memory_format=torch.channels_last)
            for got in (folded(xb), traced(xb)):
                for g, e in zip(got, expected):
                    torch.testing.assert_close(g, e[:batch], rtol=1e-4, atol=1e-5)


# --- fer-ros bench, real short runs --------------------------------------------------------------


def _run_json(capsys, *argv) -> dict:
    assert main(["bench", "--json", *argv]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def _positive_finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_bench_json_structure(capsys, tiny_checkpoint):
    report = _run_json(capsys, "--frames", "3", "--sizes", "320x240", "--faces", "1", "--detect-every", "1,2",
                       "--weights", tiny_checkpoint, "--device", "cpu", "--threads", "1")
    assert report["device"] == "cpu" and report["threads"] == 1
    assert _positive_finite(report["peak_rss_mb"])
    assert [(c["size"], c["faces"], c["detect_every"]) for c in report["cases"]] == [("320x240", 1, 1), ("320x240", 1, 2)]
    # No 640x480 case was asked for, so the default is the first case.
    default = report["default"]
    assert default == report["cases"][0]
    for case in report["cases"]:
        for key in ("fps", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "speedup_vs_naive", "detect_ms_per_run",
                    "cpu_ms_per_frame", "cores_at_30fps"):
            assert _positive_finite(case[key]), key
        assert case["p50_ms"] <= case["p95_ms"] <= case["p99_ms"]
        assert set(speed.STAGES) <= set(case["stages_ms"])
        for stage in ("decode", "detect", "align", "classify", "annotate"):
            assert _positive_finite(case["stages_ms"][stage]), stage
        assert case["cores_at_30fps"] == pytest.approx(case["cpu_ms_per_frame"] * 30 / 1000, rel=0.01)
        assert case["faces_per_frame"] == pytest.approx(1.0)  # the synthetic face is found on every frame
        assert _positive_finite(case["naive"]["fps"]) and case["naive"]["faces_per_frame"] >= 1.0


def test_bench_default_is_640x480_one_face_at_the_pipelines_own_interval(capsys, tiny_checkpoint):
    report = _run_json(capsys, "--frames", "2", "--sizes", "640x480", "--faces", "1", "--detect-every", "2,3",
                       "--set", "detect_every=3", "--no-naive", "--weights", tiny_checkpoint, "--device", "cpu")
    assert (report["default"]["size"], report["default"]["faces"], report["default"]["detect_every"]) == ("640x480", 1, 3)
    assert "speedup_vs_naive" not in report["default"]
    assert report["settings"]["detect_every"] == 3  # restored after the cases


def test_bench_soak_and_overload(capsys, tiny_checkpoint):
    report = _run_json(capsys, "--soak", "40", "--overload", "--overload-seconds", "0.5", "--overload-rate", "100",
                       "--weights", tiny_checkpoint, "--device", "cpu", "--threads", "1")
    soak = report["soak"]
    assert soak["frames"] == 40 and soak["sample_every"] == 4 and len(soak["samples"]) == 10
    assert all(_positive_finite(s["rss_mb"]) for s in soak["samples"])
    assert soak["track_ids_seen"] >= 1 and math.isfinite(soak["rss_growth_mb"])
    slot = report["overload"]["latest_frame"]
    assert slot["processed"] == slot["taken"] >= 1
    assert slot["received"] == slot["taken"] + slot["dropped"] + slot["pending_at_end"]
    assert _positive_finite(slot["latency_ms"]["p95"])
    fifo = report["overload"]["fifo_queue"]
    # a FIFO drops nothing: what it processed plus what still waits is what the camera offered (100 Hz for
    # 0.5 s), about as many frames as the newest-frame slot received from the same feed
    offered = fifo["processed"] + fifo["backlog_at_end"]
    assert fifo["processed"] >= 1
    assert 0.6 * 50 <= offered and abs(offered - slot["received"]) <= 0.25 * slot["received"]


def test_bench_text_output(capsys, tiny_checkpoint):
    assert main(["bench", "--frames", "2", "--sizes", "320x240", "--faces", "1", "--detect-every", "1", "--no-naive",
                 "--weights", tiny_checkpoint, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "320x240" in out and "default case" in out and "fps" in out


def test_option_parsers_reject_bad_values():
    assert _sizes("640x480, 1280X720") == [(640, 480), (1280, 720)]
    assert _ints("1,3,6") == [1, 3, 6]
    for bad in ("640", "640x", "axb", "16x16"):
        with pytest.raises(Exception, match="WIDTHxHEIGHT"):
            _sizes(bad)
    for bad in ("", "0", "1,x"):
        with pytest.raises(Exception, match="integers"):
            _ints(bad)


def test_bad_frames_is_an_error(capsys, tiny_checkpoint):
    assert main(["bench", "--frames", "0", "--weights", tiny_checkpoint, "--device", "cpu"]) == 2
    assert "--frames" in capsys.readouterr().err
